"""Plain-numpy (float64) reference for the VAE bound, written from the paper (Kingma & Welling 2013).

Independent of the C++ core: it only reads a ``Layout``'s layer tables
``(n_in, n_out, weight_offset, bias_offset)``. A layer's weight is the ``(n_in, n_out)`` C-order
block at ``weight_offset`` of the flat parameter vector and the layer computes ``h @ W + b``.

Model (PAPER.md, §3 and Appendix C)::

    q(z|x) = N(mu, diag exp(logvar)),  [mu, logvar] = encoder(x)
    p(z)   = N(0, I)
    p(x|z) = Bernoulli(sigmoid(a)),               a = decoder(z)
           | N(m, diag exp(v)),                   [m, v] = decoder(z)
    z_l    = mu + exp(logvar / 2) * eps_l,         eps_l ~ N(0, I)                    (§2.4)

Per-datapoint objectives, with ``log w_l = log p(x|z_l) + beta (log p(z_l) - log q(z_l|x))``::

    analytic   (estimator B, eq. 7):  (1/L) sum_l log p(x|z_l) - beta KL(q || p)
    sampled    (estimator A, eq. 6):  (1/L) sum_l log w_l
    importance (Burda et al. 2015):   log (1/L) sum_l w_l

``beta = 1`` gives the paper's bounds.
"""

import numpy as np

LOG_2PI = np.log(2.0 * np.pi)
LOG_VARIANCE_RANGE = (-15.0, 15.0)  # must equal aevb._core.log_variance_range (tested)

ACTIVATIONS = {
    "tanh": np.tanh,
    "relu": lambda a: np.maximum(a, 0.0),
    "softplus": lambda a: np.logaddexp(0.0, a),  # log(1 + e^a), stable
    "sigmoid": lambda a: 0.5 * (1.0 + np.tanh(0.5 * a)),  # 1 / (1 + e^-a), stable
}


def mlp(layers, params, activation, h):
    """Forward pass of a dense MLP: hidden layers apply ``activation``, the last layer is linear.

    Parameters
    ----------
    layers : list of tuple
        ``(n_in, n_out, weight_offset, bias_offset)`` per layer.
    params : ndarray, shape (n_params,)
    activation : str
    h : ndarray, shape (n, n_in of the first layer)

    Returns
    -------
    ndarray, shape (n, n_out of the last layer)
    """
    f = ACTIVATIONS[activation]
    for k, (n_in, n_out, w, b) in enumerate(layers):
        weight = params[w : w + n_in * n_out].reshape(n_in, n_out)
        h = h @ weight + params[b : b + n_out]
        if k + 1 < len(layers):
            h = f(h)
    return h


def clamp_log_variance(v):
    """Clamp log-variances into ``LOG_VARIANCE_RANGE``."""
    return np.clip(v, *LOG_VARIANCE_RANGE)


def encode(layout, activation, params, X):
    """Posterior parameters ``(mu, logvar)``, each of shape (n, J)."""
    params = np.asarray(params, dtype=np.float64)
    out = mlp(layout.encoder, params, activation, np.asarray(X, dtype=np.float64))
    J = layout.n_components
    return out[:, :J], clamp_log_variance(out[:, J:])


def log_normal(x, mean, log_var):
    """``log N(x; mean, diag exp(log_var))`` summed over the last axis."""
    return -0.5 * np.sum(LOG_2PI + log_var + (x - mean) ** 2 * np.exp(-log_var), axis=-1)


def log_likelihood(likelihood, x, out):
    """``log p(x|z)`` summed over features, from the decoder output ``out`` (..., D or 2D).

    Bernoulli from logits ``a``:  ``x log sigmoid(a) + (1 - x) log sigmoid(-a) = x a - log(1 + e^a)``.
    Gaussian, ``out = [m, v]``:    ``log N(x; m, diag exp(v))`` with ``v`` clamped.
    """
    if likelihood == "bernoulli":
        return np.sum(x * out - np.logaddexp(0.0, out), axis=-1)
    D = x.shape[-1]
    return log_normal(x, out[..., :D], clamp_log_variance(out[..., D:]))


def bound(layout, activation, likelihood, params, X, eps, objective, beta=1.0):
    """Per-datapoint bound (or, for ``beta != 1``, the beta-weighted training objective).

    Parameters
    ----------
    layout : aevb._core.Layout
        Only ``.encoder``, ``.decoder`` and ``.n_components`` are read.
    activation : {'tanh', 'relu', 'softplus', 'sigmoid'}
    likelihood : {'bernoulli', 'gaussian'}
    params : ndarray, shape (n_params,)
    X : ndarray, shape (n, D)
    eps : ndarray, shape (n * L, J)
        Row ``i * L + l`` is the noise of sample ``l`` of datapoint ``i``.
    objective : {'analytic', 'sampled', 'importance'}
    beta : float
        Weight of the KL (or of ``log p(z) - log q(z|x)``) term.

    Returns
    -------
    ndarray, shape (n,)
        Nats per datapoint.
    """
    params = np.asarray(params, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    n, J = X.shape[0], layout.n_components
    L = eps.shape[0] // n
    assert eps.shape == (n * L, J)
    mu, logvar = encode(layout, activation, params, X)
    eps = np.asarray(eps, dtype=np.float64).reshape(n, L, J)
    z = mu[:, None, :] + np.exp(0.5 * logvar)[:, None, :] * eps  # (n, L, J)
    out = mlp(layout.decoder, params, activation, z.reshape(n * L, J)).reshape(n, L, -1)
    loglik = log_likelihood(likelihood, X[:, None, :], out)  # (n, L)
    if objective == "analytic":
        # -KL(N(mu, sigma^2) || N(0, I)) = 1/2 sum_j (1 + log sigma_j^2 - mu_j^2 - sigma_j^2)
        neg_kl = 0.5 * np.sum(1.0 + logvar - mu**2 - np.exp(logvar), axis=1)
        return loglik.mean(axis=1) + beta * neg_kl
    log_prior = log_normal(z, 0.0, np.zeros_like(z))  # log N(z; 0, I)
    log_q = log_normal(z, mu[:, None, :], logvar[:, None, :])  # log N(z; mu, sigma^2)
    log_w = loglik + beta * (log_prior - log_q)
    if objective == "sampled":
        return log_w.mean(axis=1)
    if objective == "importance":
        # log (1/L) sum_l e^{log w_l} = m + log sum_l e^{log w_l - m} - log L,  m = max_l log w_l
        m = log_w.max(axis=1)
        return m + np.log(np.exp(log_w - m[:, None]).sum(axis=1)) - np.log(L)
    raise ValueError(f"unknown objective {objective!r}")


def log_variance_penalty(layout, activation, likelihood, params, X, eps):
    """The training loss's pull of log-variances back into ``LOG_VARIANCE_RANGE``.

    With ``e = v - clip(v)`` (zero inside the range) and ``h(e) = |e|`` for ``|e| <= 1``,
    ``(e^2 + 1) / 2`` beyond: ``(1/n) sum_i sum_j h(e_ij)`` over each datapoint's encoder
    log-variances, plus ``(1/(n L)) sum_{i,l} sum_j h(e_ilj)`` over each sample's Gaussian decoder
    log-variances.
    """
    params = np.asarray(params, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    n, J = X.shape[0], layout.n_components
    L = eps.shape[0] // n

    def excess_penalty(v):
        e = np.abs(v - clamp_log_variance(v))
        return np.sum(np.where(e <= 1.0, e, 0.5 * (e**2 + 1.0)))

    penalty = excess_penalty(mlp(layout.encoder, params, activation, X)[:, J:]) / n
    if likelihood == "gaussian":
        mu, logvar = encode(layout, activation, params, X)
        z = mu[:, None, :] + np.exp(0.5 * logvar)[:, None, :] * eps.reshape(n, L, J)
        out = mlp(layout.decoder, params, activation, z.reshape(n * L, J))
        penalty += excess_penalty(out[:, X.shape[1] :]) / (n * L)
    return penalty


def loss(layout, activation, likelihood, params, X, eps, objective, beta=1.0):
    """The minibatch loss ``-(1/n) sum_i objective_i``, plus :func:`log_variance_penalty`."""
    return -np.mean(
        bound(layout, activation, likelihood, params, X, eps, objective, beta)
    ) + log_variance_penalty(layout, activation, likelihood, params, X, eps)


def numerical_gradient(fun, params, h=1e-4):
    """Fourth-order central differences of a scalar function of a float64 vector.

    ``f'(p) ~ (f(p - 2h) - 8 f(p - h) + 8 f(p + h) - f(p + 2h)) / (12 h)``, error O(h^4).
    """
    params = np.array(params, dtype=np.float64)
    grad = np.empty_like(params)
    for k in range(params.size):
        value = params[k]
        f = []
        for step in (-2.0, -1.0, 1.0, 2.0):
            params[k] = value + step * h
            f.append(fun(params))
        params[k] = value
        grad[k] = (f[0] - 8.0 * f[1] + 8.0 * f[2] - f[3]) / (12.0 * h)
    return grad


def gradient(layout, activation, likelihood, params, X, eps, objective, beta=1.0, h=1e-4):
    """Reference gradient of :func:`loss` with respect to the parameters (finite differences)."""

    def fun(p):
        return loss(layout, activation, likelihood, p, X, eps, objective, beta)

    return numerical_gradient(fun, params, h)


def blocks(layout):
    """Named parameter blocks, ``{name: slice}``, e.g. ``'encoder[0].W'``, ``'decoder[1].b'``."""
    out = {}
    for net in ("encoder", "decoder"):
        for k, (n_in, n_out, w, b) in enumerate(getattr(layout, net)):
            out[f"{net}[{k}].W"] = slice(w, w + n_in * n_out)
            out[f"{net}[{k}].b"] = slice(b, b + n_out)
    return out
