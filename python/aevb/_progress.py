"""Training feedback: one line per epoch, and a tqdm bar over the epochs where stderr is a terminal."""

import sys


class EpochReporter:
    """Reports epochs for ``verbose`` > 0; silent otherwise.

    Lines read ``[AEVB] epoch 3/50, bound -104.21, val -106.02, 0.85 s``. Where stderr is a terminal
    and tqdm is installed, a progress bar carries the running bound and the lines are written above it.
    """

    def __init__(self, verbose, total):
        self.verbose = verbose
        self.bar = None
        if verbose and sys.stderr.isatty():
            try:
                from tqdm.auto import tqdm
            except ImportError:  # the bar is optional: pip install aevb[progress]
                tqdm = None
            if tqdm is not None:
                self.bar = tqdm(total=total, desc="[AEVB]", unit="epoch", leave=False)

    def epoch(self, epoch, total, bound, validation, seconds):
        if not self.verbose:
            return
        line = f"[AEVB] epoch {epoch}/{total}, bound {bound:.2f}"
        if validation is not None:
            line += f", val {validation:.2f}"
        line += f", {seconds:.2f} s"
        if self.bar is not None:
            self.bar.update(1)
            self.bar.set_postfix(bound=f"{bound:.2f}")
            self.bar.write(line)
        else:
            print(line, flush=True)

    def message(self, text):
        if self.verbose:
            (self.bar.write if self.bar is not None else print)(f"[AEVB] {text}")

    def close(self):
        if self.bar is not None:
            self.bar.close()
