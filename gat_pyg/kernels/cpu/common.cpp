// Argument checks shared by the CPU kernels, the instruction set, and the hash dropout.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstdlib>
#include <limits>
#include <mutex>
#include <optional>
#include <string>
#include <type_traits>

#include "common.h"

namespace gat_pyg {
namespace {

void check_index(const char* name, const at::Tensor& t, at::ScalarType dtype) {
  TORCH_CHECK(t.dim() == 1, "gat_pyg: ", name, " must be 1-D, got shape ", t.sizes());
  TORCH_CHECK(t.scalar_type() == at::kLong || t.scalar_type() == at::kInt, "gat_pyg: ", name,
              " must be int64 or int32, got ", t.scalar_type());
  TORCH_CHECK(t.scalar_type() == dtype, "gat_pyg: ", name, " must have the dtype of ptr (",
              dtype, "), got ", t.scalar_type());
  TORCH_CHECK(t.device().is_cpu(), "gat_pyg: ", name, " must be on the CPU, got ", t.device());
  TORCH_CHECK(t.is_contiguous(), "gat_pyg: ", name, " must be contiguous");
}

// Runs chunk(begin, end) over [0, n) in parallel, pieces of at least 2^16; true if any piece
// returned true (it found a bad entry). The pieces are flat, branch-free loops: the checks cost a
// few percent of a kernel call at most.
template <typename F>
bool any_bad(int64_t n, const F& chunk) {
  std::atomic<bool> found{false};
  at::parallel_for(0, n, 1 << 16, [&](int64_t begin, int64_t end) {
    if (!found.load(std::memory_order_relaxed) && chunk(begin, end))
      found.store(true, std::memory_order_relaxed);
  });
  return found.load();
}

// The loops of the checks, compiled for each instruction set as the kernels are (simd.h): on
// the baseline x86-64, 64-bit comparisons do not vectorise. Each sets `bad` if it finds one.
struct Decreasing {   // p[k + 1] < p[k] for some k in [begin, end)
  template <Isa isa, typename index_t>
  static GAT_PYG_INLINE void run(const index_t*& p, int64_t& begin, int64_t& end, int& bad) {
    int found = 0;
    for (int64_t k = begin; k < end; ++k) found |= p[k + 1] < p[k];
    bad = found;
  }
};

struct OutOfRange {   // v[k] outside [0, bound) for some k in [begin, end)
  template <Isa isa, typename index_t>
  static GAT_PYG_INLINE void run(const index_t*& v, int64_t& begin, int64_t& end,
                                 int64_t& bound, int& bad) {
    using unsigned_t = std::make_unsigned_t<index_t>;   // a negative index becomes huge
    const unsigned_t largest = static_cast<unsigned_t>(std::numeric_limits<index_t>::max());
    const unsigned_t limit = static_cast<unsigned_t>(std::min<uint64_t>(bound, largest + 1ULL));
    int found = 0;
    for (int64_t k = begin; k < end; ++k) found |= static_cast<unsigned_t>(v[k]) >= limit;
    bad = found;
  }
};

template <typename index_t>
void check_pointers(const char* name, const index_t* p, int64_t rows, int64_t edges) {
  TORCH_CHECK(p[0] == 0, "gat_pyg: ", name, "[0] must be 0, got ", static_cast<int64_t>(p[0]));
  TORCH_CHECK(p[rows] == edges, "gat_pyg: ", name, "[-1] must equal the number of edges (",
              edges, "), got ", static_cast<int64_t>(p[rows]));
  const Isa isa = active_isa();
  const bool decreasing = any_bad(rows, [&](int64_t begin, int64_t end) {
    int bad = 0;
    dispatch_isa<Decreasing>(isa, p, begin, end, bad);
    return bad != 0;
  });
  TORCH_CHECK(!decreasing, "gat_pyg: ", name, " must be non-decreasing");
}

template <typename index_t>
void check_range(const char* name, const index_t* v, int64_t n, int64_t bound) {
  const Isa isa = active_isa();
  const bool outside = any_bad(n, [&](int64_t begin, int64_t end) {
    int bad = 0;
    dispatch_isa<OutOfRange>(isa, v, begin, end, bound, bad);
    return bad != 0;
  });
  TORCH_CHECK(!outside, "gat_pyg: ", name, " has an entry outside [0, ", bound, ")");
}

// The graphs whose transposed order was verified against the sorted one, remembered by the
// identity of their five index tensors: the same TensorImpl (held weakly, so that its address
// cannot be taken by a new tensor while remembered), the same data, the same version counter
// value (bumped by every in-place write, as autograd relies on). That check reads src at
// random, one cache miss per edge (10% of a backward on 4M edges); a layer's prepared graph
// passes it once. The range checks, which keep the kernels' reads in bounds, always run.
class VerifiedTransposes {
 public:
  bool contains(const GraphTensors& g) {
    if (!trackable(g)) return false;
    std::lock_guard<std::mutex> lock(mutex_);
    for (const auto& entry : entries_)
      if (matches(entry, g)) return true;
    return false;
  }

  void add(const GraphTensors& g) {
    if (!trackable(g)) return;
    std::lock_guard<std::mutex> lock(mutex_);
    Entry& entry = entries_[next_];
    next_ = (next_ + 1) % entries_.size();
    const auto tensors = all(g);
    for (size_t k = 0; k < tensors.size(); ++k) {
      const at::Tensor& t = *tensors[k];
      entry.impl[k].emplace(t.getIntrusivePtr());
      entry.version[k] = t.unsafeGetTensorImpl()->version_counter().current_version();
      entry.data[k] = t.const_data_ptr();
      entry.numel[k] = t.numel();
    }
  }

 private:
  using Weak = c10::weak_intrusive_ptr<c10::TensorImpl, c10::UndefinedTensorImpl>;
  struct Entry {
    std::array<std::optional<Weak>, 5> impl;
    std::array<uint32_t, 5> version{};
    std::array<const void*, 5> data{};
    std::array<int64_t, 5> numel{};
  };

  static std::array<const at::Tensor*, 5> all(const GraphTensors& g) {
    return {&g.ptr, &g.src, &g.t_ptr, &g.t_col, &g.t_perm};
  }

  // Inference tensors have no version counter: they are always checked.
  static bool trackable(const GraphTensors& g) {
    for (const at::Tensor* t : all(g))
      if (!t->defined() || !t->unsafeGetTensorImpl()->version_counter().enabled()) return false;
    return true;
  }

  static bool matches(const Entry& entry, const GraphTensors& g) {
    const auto tensors = all(g);
    for (size_t k = 0; k < tensors.size(); ++k) {
      const at::Tensor& t = *tensors[k];
      if (!entry.impl[k] || entry.impl[k]->lock().get() != t.unsafeGetTensorImpl() ||
          entry.version[k] != t.unsafeGetTensorImpl()->version_counter().current_version() ||
          entry.data[k] != t.const_data_ptr() || entry.numel[k] != t.numel())
        return false;
    }
    return true;
  }

  std::mutex mutex_;
  std::array<Entry, 8> entries_;
  size_t next_ = 0;
};

VerifiedTransposes& verified_transposes() {
  static VerifiedTransposes verified;
  return verified;
}

template <typename index_t>
void check_contents(const GraphTensors& tensors, bool backward) {
  const auto g = graph_view<index_t>(tensors);
  check_pointers("ptr", g.ptr, g.num_dst, g.num_edges);
  check_range("src", g.src, g.num_edges, g.num_src);
  if (!backward) return;
  check_pointers("t_ptr", g.t_ptr, g.num_src, g.num_edges);
  check_range("t_col", g.t_col, g.num_edges, g.num_dst);
  check_range("t_perm", g.t_perm, g.num_edges, g.num_edges);
  if (verified_transposes().contains(tensors)) return;
  // Position k of the source order holds edge e = t_perm[k] from j = src[e] to i = t_col[k]:
  // k must lie in row j of t_ptr and e in row i of ptr (all indices in range, checked above).
  const bool mismatch = any_bad(g.num_edges, [&](int64_t begin, int64_t end) {
    int bad = 0;
    for (int64_t k = begin; k < end; ++k) {
      const int64_t e = g.t_perm[k], i = g.t_col[k], j = g.src[e];
      bad |= (g.t_ptr[j] > k) | (g.t_ptr[j + 1] <= k) | (g.ptr[i] > e) | (g.ptr[i + 1] <= e);
    }
    return bad != 0;
  });
  TORCH_CHECK(!mismatch, "gat_pyg: t_ptr/t_col/t_perm are not the transpose of ptr/src (an "
              "edge listed under source j in t_ptr must have src[t_perm[k]] == j and lie in "
              "row t_col[k] of ptr)");
  verified_transposes().add(tensors);
}

}  // namespace

void check_index_range(const char* name, const at::Tensor& index, int64_t bound) {
  AT_DISPATCH_INDEX_TYPES(index.scalar_type(), "check_index_range", [&] {
    check_range(name, index.const_data_ptr<index_t>(), index.numel(), bound);
  });
}

void check_index_sorted(const char* name, const at::Tensor& index) {
  if (index.numel() < 2) return;
  AT_DISPATCH_INDEX_TYPES(index.scalar_type(), "check_index_sorted", [&] {
    const index_t* p = index.const_data_ptr<index_t>();
    const Isa isa = active_isa();
    const bool decreasing = any_bad(index.numel() - 1, [&](int64_t begin, int64_t end) {
      int bad = 0;
      dispatch_isa<Decreasing>(isa, p, begin, end, bad);
      return bad != 0;
    });
    TORCH_CHECK(!decreasing, "gat_pyg: ", name, " must be non-decreasing (sorted)");
  });
}

Isa active_isa() {
  static const Isa isa = [] {
    Isa cap = Isa::kAvx512;
    if (const char* env = std::getenv("GAT_PYG_ISA")) {
      const std::string name(env);
      TORCH_CHECK(name == "base" || name == "avx2" || name == "avx512",
                  "gat_pyg: GAT_PYG_ISA must be base, avx2 or avx512, got '", name, "'");
      cap = name == "base" ? Isa::kBase : name == "avx2" ? Isa::kAvx2 : Isa::kAvx512;
    }
#if GAT_PYG_X86_DISPATCH
    __builtin_cpu_init();
    Isa cpu = Isa::kBase;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
        __builtin_cpu_supports("bmi2"))
      cpu = Isa::kAvx2;
    if (cpu == Isa::kAvx2 && __builtin_cpu_supports("avx512f") &&
        __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq"))
      cpu = Isa::kAvx512;
    return std::min(cap, cpu);
#else
    (void)cap;
    return Isa::kBase;
#endif
  }();
  return isa;
}

const char* isa_name(Isa isa) {
  return isa == Isa::kAvx512 ? "avx512" : isa == Isa::kAvx2 ? "avx2" : "base";
}

GraphTensors graph_tensors(const at::Tensor& ptr, const at::Tensor& src,
                           const std::optional<at::Tensor>& t_ptr,
                           const std::optional<at::Tensor>& t_col,
                           const std::optional<at::Tensor>& t_perm, int64_t num_src) {
  TORCH_CHECK(t_ptr.has_value() == t_col.has_value() && t_col.has_value() == t_perm.has_value(),
              "gat_pyg: t_ptr, t_col and t_perm must be given together (or none of them)");
  return {ptr, src, t_ptr.value_or(at::Tensor()), t_col.value_or(at::Tensor()),
          t_perm.value_or(at::Tensor()), num_src};
}

void check_graph(const GraphTensors& g, bool backward) {
  const auto dtype = g.ptr.scalar_type();
  check_index("ptr", g.ptr, dtype);
  check_index("src", g.src, dtype);
  TORCH_CHECK(g.ptr.numel() >= 1, "gat_pyg: ptr must have N_dst + 1 >= 1 entries");
  TORCH_CHECK(!backward || g.t_ptr.defined(), "gat_pyg: backward needs the transposed order "
              "(t_ptr, t_col, t_perm); pass it to the forward call when gradients are needed");
  if (g.t_ptr.defined()) {
    check_index("t_ptr", g.t_ptr, dtype);
    check_index("t_col", g.t_col, dtype);
    check_index("t_perm", g.t_perm, dtype);
    TORCH_CHECK(g.t_ptr.numel() == g.num_src + 1, "gat_pyg: t_ptr must have N_src + 1 = ",
                g.num_src + 1, " entries (N_src from the source features), got ",
                g.t_ptr.numel());
    TORCH_CHECK(g.t_col.numel() == g.src.numel() && g.t_perm.numel() == g.src.numel(),
                "gat_pyg: src, t_col and t_perm must have one entry per edge, got ",
                g.src.numel(), ", ", g.t_col.numel(), ", ", g.t_perm.numel());
  }
  AT_DISPATCH_INDEX_TYPES(dtype, "check_graph", [&] { check_contents<index_t>(g, backward); });
}

void check_tensor(const char* name, const at::Tensor& t, at::ScalarType dtype,
                  at::IntArrayRef sizes) {
  TORCH_CHECK(t.scalar_type() == dtype, "gat_pyg: ", name, " must be ", dtype, ", got ",
              t.scalar_type());
  TORCH_CHECK(t.device().is_cpu(), "gat_pyg: ", name, " must be on the CPU, got ", t.device());
  TORCH_CHECK(t.is_contiguous(), "gat_pyg: ", name, " must be contiguous");
  TORCH_CHECK(t.dim() == static_cast<int64_t>(sizes.size()), "gat_pyg: ", name, " must have ",
              sizes.size(), " dimensions, got shape ", t.sizes());
  for (size_t d = 0; d < sizes.size(); ++d)
    TORCH_CHECK(sizes[d] < 0 || t.size(d) == sizes[d], "gat_pyg: ", name, " has shape ",
                t.sizes(), ", expected size ", sizes[d], " in dimension ", d);
}

HashDropout make_dropout(double p, const std::optional<at::Tensor>& seed, const char* name,
                         const char* seed_name) {
  TORCH_CHECK(p >= 0.0 && p <= 1.0, "gat_pyg: ", name, " must be in [0, 1], got ", p);
  int64_t value = 0;
  if (p > 0.0) {
    TORCH_CHECK(seed.has_value() && seed->defined(), "gat_pyg: ", name, " > 0 needs a ",
                seed_name);
    TORCH_CHECK(seed->numel() == 1 && !at::isFloatingType(seed->scalar_type()) &&
                    seed->device().is_cpu(),
                "gat_pyg: ", seed_name, " must be one integer on the CPU, got shape ",
                seed->sizes(), " of ", seed->scalar_type(), " on ", seed->device());
    value = seed->item<int64_t>();
  }
  return HashDropout(p, value);
}

namespace {

// out[k] = x[k] * keep(k) / (1 - p) over [begin, end) of the flat index (out may be x); the
// mask from one hash per element (attention dropout, as in the kernels) or per two (paired).
struct DropValues {
  template <Isa isa, typename scalar_t>
  static GAT_PYG_INLINE void run(const HashDropout& dropout, const bool& paired,
                                 const scalar_t*& x, scalar_t*& out, int64_t& begin,
                                 int64_t& end) {
    using acc_t = at::opmath_type<scalar_t>;
    constexpr int64_t kChunk = 512;
    acc_t values[kChunk];
    const acc_t scale = static_cast<acc_t>(dropout.scale());
    for (int64_t k0 = begin; k0 < end; k0 += kChunk) {
      const int64_t m = std::min(kChunk, end - k0);
#pragma omp simd
      for (int64_t k = 0; k < m; ++k) values[k] = static_cast<acc_t>(x[k0 + k]) * scale;
      if (paired) dropout.template apply_paired<isa>(static_cast<uint64_t>(k0), m, values, values);
      else dropout.template apply<isa>(static_cast<uint64_t>(k0), m, values, values);
#pragma omp simd
      for (int64_t k = 0; k < m; ++k) out[k0 + k] = static_cast<scalar_t>(values[k]);
    }
  }
};

void drop_into(const at::Tensor& x, const HashDropout& dropout, bool paired, at::Tensor& out) {
  const Isa isa = active_isa();
  AT_DISPATCH_FLOATING_TYPES_AND(at::kBFloat16, x.scalar_type(), "hash_dropout", [&] {
    constexpr bool wide = !std::is_same_v<scalar_t, double>;
    const scalar_t* in = x.const_data_ptr<scalar_t>();
    scalar_t* o = out.data_ptr<scalar_t>();
    at::parallel_for(0, x.numel(), 1 << 14, [&](int64_t begin, int64_t end) {
      dispatch_isa<DropValues, wide>(isa, dropout, paired, in, o, begin, end);
    });
  });
}

}  // namespace

at::Tensor hash_dropout(const at::Tensor& x, const HashDropout& dropout, bool paired) {
  const auto input = x.contiguous();
  if (!dropout.active()) return input.clone();
  auto out = at::empty_like(input);
  drop_into(input, dropout, paired, out);
  return out;
}

void hash_dropout_(at::Tensor& x, const HashDropout& dropout, bool paired) {
  TORCH_INTERNAL_ASSERT(x.is_contiguous());
  if (dropout.active()) drop_into(x, dropout, paired, x);
}

}  // namespace gat_pyg
