// The Python module gat_pyg.kernels._C: the library of the operators' CPU kernels.
//
// The operators' schemas, fake kernels, references and autograd are defined in Python
// (gat_pyg/kernels/dispatch.py and one module per operator); importing this module (which
// gat_pyg/kernels/native.py does after the schemas exist) runs each <op>_kernel.cpp's
// TORCH_LIBRARY_IMPL, which registers its operators' CPU kernels and, for the forward ones,
// their autograd for CPU tensors (AutogradCPU; autograd.h, autograd.cpp):
//
//   gat_kernel.cpp, gatv2_kernel.cpp   attention forward and backward (attend.h: the row and
//                                      column passes, the hash dropout)
//   head_scores_kernel.cpp             GAT's per-node, per-head half-scores <x[n,h,:], att[h,:]>
//   dropout_kernel.cpp                 attention, feature and sparse dropout
//   sparse_linear_kernel.cpp           the sparse-feature projection X @ W^T and its backward
//
// The module itself has one function, instruction_set(): the instruction set the kernels run
// with ("base", "avx2" or "avx512").
#include <Python.h>

#include "common.h"

namespace {
PyObject* instruction_set(PyObject*, PyObject*) {
  try {
    return PyUnicode_FromString(gat_pyg::isa_name(gat_pyg::active_isa()));
  } catch (const std::exception& error) {   // a bad GAT_PYG_ISA
    PyErr_SetString(PyExc_ValueError, error.what());
    return nullptr;
  }
}

PyMethodDef methods[] = {
    {"instruction_set", instruction_set, METH_NOARGS,
     "The instruction set the kernels run with: 'base', 'avx2' or 'avx512'."},
    {nullptr, nullptr, 0, nullptr}};
}  // namespace

extern "C" PyObject* PyInit__C(void) {
  static PyModuleDef module = {PyModuleDef_HEAD_INIT, "_C", nullptr, -1, methods};
  return PyModule_Create(&module);
}
