"""A compatibility shim for Triton's interpreter (``TRITON_INTERPRET=1``) under NumPy >= 2.4.

The interpreter holds every scalar as a one-element NumPy array of shape ``(1,)`` and gives
its tensors ``__index__ = lambda self: int(self.handle.data)``, which a ``for`` loop with a
run-time bound (``range(start, end, BLOCK)``) calls. NumPy 2.4 made ``int()`` of an array
with ``ndim > 0`` an error (deprecated since 1.25), so with Triton 3.6 every interpreted loop
over a run-time bound fails with "only 0-dimensional arrays can be converted to Python
scalars". :func:`install` re-patches that one attribute with ``.item()`` (the same value, for
any shape of one element) after the interpreter's own patching. It touches nothing when the
interpreter's internals are not the expected ones (a Triton that no longer needs it).
"""


def install() -> bool:
    """Installs the shim once; True if it is (now) installed."""
    try:
        from triton.runtime import interpreter
        original = interpreter._patch_lang_tensor
    except (ImportError, AttributeError):
        return False
    if getattr(original, '_gat_pyg_numpy_compat', False):
        return True

    def patch_lang_tensor(tensor, scope):
        original(tensor, scope)
        scope.set_attr(tensor, '__index__', lambda self: int(self.handle.data.item()))

    patch_lang_tensor._gat_pyg_numpy_compat = True
    interpreter._patch_lang_tensor = patch_lang_tensor
    return True
