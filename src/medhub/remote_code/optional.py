"""Placeholder for a package medhub installs but plain transformers does not (pydicom, scipy, ...).

The remote code imports such packages in a `try` block and binds a `Missing` on failure, so the repo loads
anywhere and the one code path needing the package says which package, instead of `NameError`.
"""


class Missing:
    def __init__(self, package: str, name: str):
        self._package, self._name = package, name

    def _fail(self):
        raise ImportError(f"{self._name} needs the package {self._package!r}, which medhub installs with it: "
                          f"pip install medhub (or pip install {self._package})")

    def __getattr__(self, attribute):
        if attribute.startswith("__"):
            raise AttributeError(attribute)
        self._fail()

    def __call__(self, *args, **kwargs):
        self._fail()
