"""Figures of a fitted AEVB: training curve, latent scatter and manifold, reconstructions, samples.

Needs matplotlib (``pip install aevb[plot]``), imported only when a function is called. Functions
that draw into one Axes take ``ax`` and return it; those that draw a grid of images return the
Figure. The images are the model's own numbers (``transform``, ``inverse_transform``, ``sample``),
unscaled.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn.utils.validation import check_is_fitted


def plot_training_curve(model, ax=None):
    """The bound per epoch: training (the negated ``loss_curve_``) and validation, when recorded.

    Parameters
    ----------
    model : AEVB
        A fitted model.
    ax : matplotlib Axes, optional
        Where to draw; default: a new figure.

    Returns
    -------
    ax : matplotlib Axes
        Its first line is the training bound, the second (with early stopping) the validation bound.
    """
    check_is_fitted(model)
    ax = _axes(ax)
    bound = -np.asarray(model.loss_curve_, dtype=float)
    ax.plot(np.arange(1, bound.size + 1), bound, label="train (mean minibatch bound)")
    if model.validation_scores_ is not None:
        scores = np.asarray(model.validation_scores_, dtype=float)
        ax.plot(np.arange(1, scores.size + 1), scores, label="validation")
    ax.set_xlabel("epoch")
    ax.set_ylabel("bound on log p(x), nats per datapoint")
    ax.legend()
    return ax


def plot_latent_scatter(model, X, y=None, ax=None):
    """The posterior means of X in the first two latent dimensions, coloured by y.

    Parameters
    ----------
    model : AEVB
        A fitted model with ``n_components >= 2``.
    X : array-like of shape (n_samples, n_features)
    y : array-like of shape (n_samples,), optional
        Labels for colour, with a legend for up to 20 classes.
    ax : matplotlib Axes, optional

    Returns
    -------
    ax : matplotlib Axes
        ``ax.collections[0]`` is the scatter; its offsets are ``transform(X)[:, :2]``.
    """
    Z = model.transform(X)
    if Z.shape[1] < 2:
        raise ValueError(f"a latent scatter needs n_components >= 2; the model has {Z.shape[1]}")
    ax = _axes(ax)
    if y is None:
        ax.scatter(Z[:, 0], Z[:, 1], s=6)
    else:
        y = np.asarray(y)
        if y.shape != (Z.shape[0],):
            raise ValueError(f"y must have shape ({Z.shape[0]},) to match X; got {y.shape}")
        classes, codes = np.unique(y, return_inverse=True)
        cmap = "tab10" if classes.size <= 10 else "tab20" if classes.size <= 20 else "viridis"
        points = ax.scatter(Z[:, 0], Z[:, 1], c=codes, cmap=cmap, s=6)
        if classes.size <= 20:
            handles, _ = points.legend_elements(num=list(range(classes.size)))
            ax.legend(handles, [str(c) for c in classes], loc="best", fontsize="small")
    ax.set_xlabel("z1 (posterior mean)")
    ax.set_ylabel("z2 (posterior mean)")
    return ax


def plot_manifold(model, n=15, image_shape=None, ax=None):
    """Decoder means over a 2-D latent grid, as the paper's Figure 4.

    Grid points are the centres of an n x n grid on the unit square mapped through the inverse CDF
    of the standard normal, so they cover the prior p(z) = N(0, I) by equal probability. Right is
    larger z1, up is larger z2.

    Parameters
    ----------
    model : AEVB
        A fitted model with ``n_components == 2``.
    n : int, default=15
        Images per side.
    image_shape : tuple of int, optional
        (height, width) of one image; default: square, the root of ``n_features_in_``.
    ax : matplotlib Axes, optional

    Returns
    -------
    ax : matplotlib Axes
        ``ax.images[0]`` holds the tiled images, with one transparent (NaN) pixel between them: the
        image in grid row r and column c starts at pixel (r * (height + 1), c * (width + 1)).
    """
    check_is_fitted(model)
    n_components = model.encoder_intercepts_[-1].size // 2  # the fitted size: means, log-variances
    if n_components != 2:
        raise ValueError(f"plot_manifold needs n_components == 2; the model has {n_components}")
    shape = _image_shape(model.n_features_in_, image_shape)
    z = _normal_quantiles((np.arange(n) + 0.5) / n)
    z1, z2 = np.meshgrid(z, z[::-1])  # row 0 is the top of the image: the largest z2
    grid = np.column_stack([z1.ravel(), z2.ravel()])
    images = model.inverse_transform(grid).reshape(n * n, *shape)
    ax = _axes(ax)
    ax.imshow(_tile(images, n, n), cmap="gray")
    ax.set_axis_off()
    return ax


def plot_reconstructions(model, X, n=10, image_shape=None):
    """The first n rows of X (top) over their reconstructions E[x | z = mu(x)] (bottom).

    Parameters
    ----------
    model : AEVB
        A fitted model.
    X : array-like of shape (n_samples, n_features)
    n : int, default=10
        Columns: the first n rows of X.
    image_shape : tuple of int, optional
        (height, width) of one image; default: square.

    Returns
    -------
    fig : matplotlib Figure
        With 2 x n Axes; ``fig.axes[i]`` shows row i of X, ``fig.axes[n + i]`` its reconstruction,
        both on the originals' colour scale.
    """
    plt = _pyplot()
    X = np.asarray(X)[:n]
    n = X.shape[0]
    shape = _image_shape(model.n_features_in_, image_shape)
    recon = model.inverse_transform(model.transform(X))
    fig, axes = plt.subplots(2, n, figsize=(max(n, 2), 2.2), squeeze=False)
    low, high = float(X.min()), float(X.max())
    for i in range(n):
        for row, images in enumerate((X, recon)):
            axes[row, i].imshow(images[i].reshape(shape), cmap="gray", vmin=low, vmax=high)
            axes[row, i].set_xticks([])
            axes[row, i].set_yticks([])
    axes[0, 0].set_ylabel("data")
    axes[1, 0].set_ylabel("recon.")
    return fig


def plot_samples(model, n=16, image_shape=None, random_state=None, noise=False):
    """Images generated by the model, z ~ N(0, I) then E[x|z] (or x ~ p(x|z) with ``noise``).

    Parameters
    ----------
    model : AEVB
        A fitted model.
    n : int, default=16
        Number of samples, tiled in rows of ceil(sqrt(n)).
    image_shape : tuple of int, optional
        (height, width) of one image; default: square.
    random_state : int, RandomState instance or None
        Passed to ``model.sample``.
    noise : bool, default=False
        Passed to ``model.sample``: False shows the decoder means, which read better than binary
        draws.

    Returns
    -------
    fig : matplotlib Figure
        ``fig.axes[0].images[0]`` holds the samples, tiled row by row with one transparent (NaN)
        pixel between them as in ``plot_manifold``; empty cells of the last row are NaN too.
    """
    plt = _pyplot()
    shape = _image_shape(model.n_features_in_, image_shape)
    samples = model.sample(n, random_state=random_state, noise=noise).reshape(n, *shape)
    columns = math.ceil(math.sqrt(n))
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.imshow(_tile(samples, math.ceil(n / columns), columns), cmap="gray")
    ax.set_axis_off()
    return fig


# --------------------------------------------------------------------------- helpers


def _pyplot():
    try:
        import matplotlib.pyplot as plt
    except ImportError as exc:
        raise ImportError(
            "aevb.plotting needs matplotlib: pip install aevb[plot] (or pip install matplotlib)"
        ) from exc
    return plt


def _axes(ax):
    if ax is None:
        _, ax = _pyplot().subplots()
    return ax


def _image_shape(n_features, image_shape):
    if image_shape is None:
        side = math.isqrt(n_features)
        if side * side != n_features:
            raise ValueError(
                f"{n_features} features are not a square image; pass image_shape=(height, width)"
            )
        return side, side
    image_shape = tuple(int(s) for s in image_shape)
    if math.prod(image_shape) != n_features:
        raise ValueError(
            f"image_shape {image_shape} does not hold the model's {n_features} features"
        )
    return image_shape


def _tile(images, rows, columns, gap=1):
    """(k, h, w) images into one array, row by row, with ``gap`` NaN pixels between them.

    NaN is drawn transparent: the gaps, and cells left empty in the last row, show the background.
    Image i occupies ``[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w]`` with
    ``r, c = divmod(i, columns)``.
    """
    k, h, w = images.shape
    dtype = np.result_type(images.dtype, np.float32)
    tiled = np.full((rows * (h + gap) - gap, columns * (w + gap) - gap), np.nan, dtype=dtype)
    for i in range(k):
        r, c = divmod(i, columns)
        tiled[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = images[i]
    return tiled


def _normal_quantiles(p):
    """The standard normal's inverse CDF, from SciPy when it is installed."""
    try:
        from scipy.special import ndtri
    except ImportError:
        from statistics import NormalDist

        return np.array([NormalDist().inv_cdf(float(q)) for q in p])
    return ndtri(p)
