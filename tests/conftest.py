import os

# scikit-learn runs its array-API check only when SciPy's array API support is switched on.
os.environ.setdefault("SCIPY_ARRAY_API", "1")
