// Operator schemas (namespace gat_pyg) and their CPU kernels; their autograd is in
// autograd.cpp, fake (meta) kernels and vmap rules are registered from Python
// (gat_pyg/kernels/library.py).
//
// The forward ops take the transposed order (t_ptr, t_col, t_perm) without reading it, so that
// autograd can save it for the backward op; it is optional there (None when no gradient will
// be asked for, e.g. inference). Three dropouts share one counter-based hash (attention.h), each
// with its own seed: attention dropout (counter: alpha's flat index e * H + h), message dropout
// of the aggregated source features (h_src's flat index (j * H + h) * C + c, a mask shared by
// all edges leaving j; the scores do not see it), feature_dropout (any tensor's flat index) and
// sparse_dropout (a sparse matrix's stored entries, in order; sparse.cpp, with sparse_linear,
// the first layer's product with sparse bag-of-words features). head_scores (scores.cpp) is
// GAT's per-node, per-head half-score <x[n, h, :], att[h, :]>.
#include <Python.h>
#include <torch/library.h>

#include "ops.h"

// Importing gat_pyg.kernels._C loads this library and runs the registrations below; the
// operators are reached through torch.ops.gat_pyg. The module itself has one function,
// instruction_set(): the instruction set the kernels run with ("base", "avx2" or "avx512").
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

TORCH_LIBRARY(gat_pyg, m) {
  m.def("gat_forward(Tensor ptr, Tensor src, Tensor? t_ptr, Tensor? t_col, Tensor? t_perm, "
        "Tensor s_src, Tensor? s_dst, Tensor? s_edge, Tensor h_src, float negative_slope, "
        "float dropout, Tensor? seed, float message_dropout=0., Tensor? message_seed=None) "
        "-> (Tensor out, Tensor alpha)");
  m.def("gat_backward(Tensor grad_out, Tensor? grad_alpha, Tensor ptr, Tensor src, "
        "Tensor t_ptr, Tensor t_col, Tensor t_perm, Tensor s_src, Tensor? s_dst, "
        "Tensor? s_edge, Tensor h_src, Tensor alpha, float negative_slope, float dropout, "
        "Tensor? seed, bool[4] output_mask, float message_dropout=0., "
        "Tensor? message_seed=None) -> (Tensor grad_s_src, Tensor grad_s_dst, "
        "Tensor grad_s_edge, Tensor grad_h_src)");
  m.def("gatv2_forward(Tensor ptr, Tensor src, Tensor? t_ptr, Tensor? t_col, Tensor? t_perm, "
        "Tensor x_l, Tensor x_r, Tensor att, Tensor? edge_attr, Tensor? w_edge, Tensor h_src, "
        "float negative_slope, float dropout, Tensor? seed, float message_dropout=0., "
        "Tensor? message_seed=None) -> (Tensor out, Tensor alpha)");
  m.def("gatv2_backward(Tensor grad_out, Tensor? grad_alpha, Tensor ptr, Tensor src, "
        "Tensor t_ptr, Tensor t_col, Tensor t_perm, Tensor x_l, Tensor x_r, Tensor att, "
        "Tensor? edge_attr, Tensor? w_edge, Tensor h_src, Tensor alpha, float negative_slope, "
        "float dropout, Tensor? seed, bool[6] output_mask, float message_dropout=0., "
        "Tensor? message_seed=None, bool merge_h_src=False) -> (Tensor grad_x_l, "
        "Tensor grad_x_r, Tensor grad_att, Tensor grad_edge_attr, Tensor grad_w_edge, "
        "Tensor grad_h_src)");
  m.def("attention_dropout(Tensor alpha, float dropout, Tensor? seed) -> Tensor");
  m.def("feature_dropout(Tensor x, float dropout, Tensor? seed) -> Tensor");
  m.def("head_scores(Tensor x, Tensor att) -> Tensor");
  m.def("head_scores_backward(Tensor grad, Tensor x, Tensor att, bool[2] output_mask) "
        "-> (Tensor grad_x, Tensor grad_att)");
  m.def("sparse_linear(Tensor row, Tensor col, Tensor values, Tensor weight, int num_rows) "
        "-> Tensor");
  m.def("sparse_linear_backward(Tensor grad_out, Tensor row, Tensor col, Tensor values, "
        "Tensor weight, bool[2] output_mask) -> (Tensor grad_values, Tensor grad_weight)");
  m.def("sparse_dropout(Tensor indices, Tensor values, float dropout, Tensor? seed) "
        "-> (Tensor indices, Tensor values)");
}

TORCH_LIBRARY_IMPL(gat_pyg, CPU, m) {
  m.impl("gat_forward", &gat_pyg::gat_forward);
  m.impl("gat_backward", &gat_pyg::gat_backward);
  m.impl("gatv2_forward", &gat_pyg::gatv2_forward);
  m.impl("gatv2_backward", &gat_pyg::gatv2_backward);
  m.impl("attention_dropout", &gat_pyg::attention_dropout);
  m.impl("feature_dropout", &gat_pyg::feature_dropout);
  m.impl("head_scores", &gat_pyg::head_scores);
  m.impl("head_scores_backward", &gat_pyg::head_scores_backward);
  m.impl("sparse_linear", &gat_pyg::sparse_linear);
  m.impl("sparse_linear_backward", &gat_pyg::sparse_linear_backward);
  m.impl("sparse_dropout", &gat_pyg::sparse_dropout);
}
