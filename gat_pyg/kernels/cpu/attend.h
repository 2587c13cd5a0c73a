// The attention pass shared by GAT and GATv2: a variant only says how an edge's score is
// computed (and differentiated); softmax, attention dropout and aggregation live here once.
//
// Plain meaning, for a destination row i (its edges e = ptr[i] .. ptr[i+1]-1, sources
// j = src[e]) and a head h:
//
//   score[e,h] = variant's LeakyReLU-ed score of edge (j -> i)
//   alpha[e,h] = exp(score[e,h] - max_row) / sum_row exp(score - max_row)   (PyG's softmax)
//   out[i,h,:] = sum_e alpha[e,h] * keep[e,h] / (1-p) * h_src[j,h,:]
//
// A row without edges gives out = 0. Backward, with g[e,h] = dL/dalpha[e,h]:
//
//   g[e,h]           = keep[e,h]/(1-p) * <grad_out[i,h,:], h_src[j,h,:]> + grad_alpha[e,h]
//   grad_score[e,h]  = alpha[e,h] * (g[e,h] - sum_row alpha * g)
//   grad_h_src[j,h,:] = sum over edges e leaving j of alpha[e,h] keep/(1-p) grad_out[i,h,:]
//
// The last sum runs over the source-sorted (transposed) order so every output element is
// written by one thread: no atomics, and every sum has a fixed order.
//
// How it is computed. Rows are processed in blocks of consecutive rows (see balanced_blocks);
// a block's edges are consecutive too, so the per-edge work that does not read a feature row
// (scores, exp, normalisation, dropout masks, the softmax backward) runs as flat loops over all
// the block's edges and heads, which vectorise whatever the degrees are, and per-row sums go
// through a row index per edge rather than a loop per row (most rows of a sparse graph have a
// handful of edges: a loop per row costs a mispredicted branch at its end, more than its
// arithmetic). Only the passes that read h_src[j] (or grad_out[i], x_l, x_r) run edge by edge,
// vectorised across heads and channels. Each block's function is compiled for three
// instruction sets (simd.h) and for three shapes: 8 heads x 8 channels, one head of up to 8
// channels, and any other, chosen at run time. Per-thread scratch is kept between calls.
#pragma once

#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <type_traits>
#include <vector>

#include "simd.h"

namespace gat_pyg {

// A destination-sorted CSR graph and its transpose (see gat_pyg/kernels/attend.py).
template <typename index_t>
struct Graph {
  const index_t* ptr;     // [num_dst + 1]; rows are destinations
  const index_t* src;     // [num_edges] source of each destination-sorted edge
  const index_t* t_ptr;   // [num_src + 1]; rows are sources
  const index_t* t_col;   // [num_edges] destination of each source-sorted edge
  const index_t* t_perm;  // [num_edges] destination-sorted position of each such edge
  int64_t num_dst;
  int64_t num_src;
  int64_t num_edges;
};

// Heads and channels, each either fixed at compile time (kH, kC > 0) or read at run time (0;
// kC = kUpTo8: at most 8, with one head), and the instruction set the code is compiled for.
// Fixed sizes let the compiler unroll and vectorise the per-edge loops completely; two shapes
// get eight-float vectors (simd.h): 8 heads x 8 channels as eight of them, one head of up to 8
// channels (an output layer's classes) as one, partially filled.
constexpr int kUpTo8 = -1;

template <int kH, int kC, Isa kIsa = Isa::kBase>
struct Shape {
  static constexpr int kHeads = kH, kChannels = kC;
  static constexpr Isa isa = kIsa;
  static constexpr bool k8x8 = GAT_PYG_VEC8 && kH == 8 && kC == 8;
  static constexpr bool k1x8 = GAT_PYG_VEC8 && kH == 1 && kC == kUpTo8;
  int64_t heads, channels;
  GAT_PYG_INLINE int64_t H() const { return kH > 0 ? kH : heads; }
  GAT_PYG_INLINE int64_t C() const { return kC > 0 ? kC : channels; }
  GAT_PYG_INLINE int64_t HC() const { return H() * C(); }
  // Whether row r of a tensor of `rows` [H, C] rows can be read as 8 floats (1x8: the row is
  // not too close to the tensor's end).
  GAT_PYG_INLINE bool whole(int64_t r, int64_t rows) const {
    return r * C() + 8 <= rows * C();
  }
};

// Calls f(Shape<kH, kC>) with the shape specialisation that fits (H, C); float64 (`specialise`
// false) always takes the general one.
template <bool specialise, typename F>
void dispatch_shape(int64_t heads, int64_t channels, const F& f) {
  if constexpr (specialise) {
    if (heads == 8 && channels == 8) return f(Shape<8, 8>{heads, channels});
    if (GAT_PYG_VEC8 && heads == 1 && channels <= 8) return f(Shape<1, kUpTo8>{heads, channels});
  }
  f(Shape<0, 0>{heads, channels});
}

// The same shape, compiled for instruction set `isa`.
template <Isa isa, int kH, int kC, Isa any>
GAT_PYG_INLINE Shape<kH, kC, isa> for_isa(const Shape<kH, kC, any>& d) {
  return {d.heads, d.channels};
}

// Dropout decided by a counter-based hash of (seed, position): the mask is a pure function of
// its coordinates, so it does not depend on how rows are split among threads, and backward
// regenerates it instead of storing it. Attention dropout's counter is edge * H + head.
class HashDropout {
 public:
  HashDropout(double p, int64_t seed)
      : active_(p > 0.0), base_(mix(static_cast<uint64_t>(seed))) {
    // keep iff the hash's upper 32 bits >= p * 2^32: P(keep) = 1 - p to within 2^-32.
    threshold_ = p >= 1.0 ? (uint64_t{1} << 32)
                          : static_cast<uint64_t>(std::llround(p * 4294967296.0));
    // p = 1 drops everything; a scale of 0 (not inf) keeps 0 * scale from being NaN.
    scale_ = !active_ ? 1.0 : (p >= 1.0 ? 0.0 : 1.0 / (1.0 - p));
  }

  bool active() const { return active_; }
  double scale() const { return scale_; }

  GAT_PYG_INLINE bool keep(uint64_t counter) const {
    return !active_ || (mix(base_ + (counter + 1) * 0x9E3779B97F4A7C15ULL) >> 32) >= threshold_;
  }

  // out[k] = value[k] * keep(counter(k)) for k < n (a product, not a branch, which would be
  // mispredicted). The vector versions hash a chunk into 32-bit words first, then apply them:
  // in one loop GCC does not vectorise the mix of 64-bit hashing and float arithmetic.
  template <Isa isa, typename T, typename Counter>
  GAT_PYG_INLINE void apply(int64_t n, const Counter& counter, const T* value, T* out) const {
    const uint64_t base = base_;
    if (threshold_ > 0xFFFFFFFFULL) {   // p = 1
      for (int64_t k = 0; k < n; ++k) out[k] = value[k] * T(0);
      return;
    }
    const uint32_t threshold = static_cast<uint32_t>(threshold_);
    if constexpr (isa == Isa::kBase) {
      for (int64_t k = 0; k < n; ++k)
        out[k] = value[k] * static_cast<T>(hash(base, counter(k)) >= threshold);
    } else {
      constexpr int64_t kChunk = 256;
      uint32_t bits[kChunk];
      for (int64_t k0 = 0; k0 < n; k0 += kChunk) {
        const int64_t m = std::min(kChunk, n - k0);
#pragma omp simd
        for (int64_t k = 0; k < m; ++k) bits[k] = hash(base, counter(k0 + k));
#pragma omp simd
        for (int64_t k = 0; k < m; ++k)
          out[k0 + k] = value[k0 + k] * static_cast<T>(bits[k] >= threshold);
      }
    }
  }

  // apply() with one hash per two elements, for the per-element dropouts (messages, features):
  // element k takes the low (k even) or high (k odd) 32 bits of the hash of counter k / 2.
  // Half the hashing of apply(): a hash costs more than the rest of a feature's dropout.
  template <Isa isa, typename T>
  GAT_PYG_INLINE void apply_paired(uint64_t first, int64_t n, const T* value, T* out) const {
    const uint64_t base = base_;
    if (threshold_ > 0xFFFFFFFFULL) {   // p = 1
      for (int64_t k = 0; k < n; ++k) out[k] = value[k] * T(0);
      return;
    }
    const uint32_t threshold = static_cast<uint32_t>(threshold_);
    const auto half = [base](uint64_t c) {
      const uint64_t h = mix(base + ((c >> 1) + 1) * 0x9E3779B97F4A7C15ULL);
      return static_cast<uint32_t>((c & 1) ? h >> 32 : h);
    };
    int64_t k = 0;
    if ((first & 1) && n > 0) {   // start on an even element
      out[0] = value[0] * static_cast<T>(half(first) >= threshold);
      k = 1;
    }
    if constexpr (isa == Isa::kBase) {
      for (; k < n; ++k) out[k] = value[k] * static_cast<T>(half(first + k) >= threshold);
    } else {
      constexpr int64_t kChunk = 512;
      uint64_t words[kChunk / 2];
      uint32_t bits[kChunk];
      for (; k < n; k += kChunk) {
        const int64_t m = std::min(kChunk, n - k), pairs = (m + 1) / 2;
        const uint64_t pair0 = (first + k) >> 1;
#pragma omp simd
        for (int64_t i = 0; i < pairs; ++i)
          words[i] = mix(base + (pair0 + static_cast<uint64_t>(i) + 1) * 0x9E3779B97F4A7C15ULL);
        // Low half first: the memory order of a 64-bit word on a little-endian machine.
        if constexpr (std::endian::native == std::endian::little) {
          std::memcpy(bits, words, static_cast<size_t>(pairs) * sizeof(uint64_t));
        } else {
          for (int64_t i = 0; i < pairs; ++i) {
            bits[2 * i] = static_cast<uint32_t>(words[i]);
            bits[2 * i + 1] = static_cast<uint32_t>(words[i] >> 32);
          }
        }
#pragma omp simd
        for (int64_t i = 0; i < m; ++i)
          out[k + i] = value[k + i] * static_cast<T>(bits[i] >= threshold);
      }
    }
  }

  // apply() with the counters counter0, counter0 + 1, ...
  template <Isa isa, typename T>
  GAT_PYG_INLINE void apply(uint64_t counter0, int64_t n, const T* value, T* out) const {
    apply<isa>(n, [counter0](int64_t k) { return counter0 + static_cast<uint64_t>(k); }, value,
               out);
  }

 private:
  // SplitMix64's finaliser (Steele, Lea, Flood 2014): a bijective avalanche mix.
  static GAT_PYG_INLINE uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }

  // The upper 32 bits of the mix of the counter's position in a SplitMix64 stream.
  static GAT_PYG_INLINE uint32_t hash(uint64_t base, uint64_t counter) {
    return static_cast<uint32_t>(mix(base + (counter + 1) * 0x9E3779B97F4A7C15ULL) >> 32);
  }

  bool active_;
  uint64_t base_;
  uint64_t threshold_;
  double scale_;
};

// LeakyReLU and its derivative (aten's leaky_relu_backward: the slope where z <= 0), without
// branches: the sign of z is random, so a branch would be mispredicted half the time.
template <typename T>
GAT_PYG_INLINE T leaky_relu(T z, T slope) {
  return std::max(z, T(0)) + slope * std::min(z, T(0));
}

// As arithmetic on (z > 0) in {0, 1} rather than a select: in scalar code (a loop's remainder)
// GCC may compile a select into a branch, mispredicted half the time. Exact: 1 or slope.
template <typename T>
GAT_PYG_INLINE T leaky_relu_grad(T z, T slope) {
  const T positive = static_cast<T>(z > T(0));
  return positive + (T(1) - positive) * slope;
}

// Cost units (edges + rows) per block of rows, and the most blocks a pass is split into.
constexpr int64_t kBlockCost = 4096;
constexpr int64_t kMaxBlocks = 1024;

// Splits rows [0, rows) into consecutive blocks of about equal cost (edges + rows) and returns
// the boundaries. They depend only on the graph, never on the thread count: per-block partial
// sums (GATv2's parameter gradients) are then added in the same order however many threads
// run, so results are identical with 1 or 16 threads.
template <typename index_t>
std::vector<int64_t> balanced_blocks(const index_t* ptr, int64_t rows) {
  const int64_t total = static_cast<int64_t>(ptr[rows]) + rows;
  const int64_t count = std::clamp<int64_t>((total + kBlockCost - 1) / kBlockCost, 1, kMaxBlocks);
  std::vector<int64_t> bounds{0};
  for (int64_t k = 1; k < count; ++k) {
    const int64_t target = total * k / count;
    int64_t lo = bounds.back(), hi = rows;   // first row whose cost prefix reaches target
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (static_cast<int64_t>(ptr[mid]) + mid < target) lo = mid + 1; else hi = mid;
    }
    if (lo > bounds.back() && lo < rows) bounds.push_back(lo);
  }
  bounds.push_back(rows);
  return bounds;
}

// Runs per_thread(claim) on each of torch's threads; claim() returns the next unprocessed
// block (a value >= num_blocks means none is left). Blocks are claimed one at a time rather
// than split evenly in advance, so a thread that the OS deschedules (a busy or shared
// machine) delays only the block it holds. Which thread takes a block never changes what is
// computed for it.
template <typename F>
void parallel_blocks(int64_t num_blocks, const F& per_thread) {
  std::atomic<int64_t> next{0};
  const auto claim = [&next]() { return next.fetch_add(1, std::memory_order_relaxed); };
  const int64_t workers = std::clamp<int64_t>(at::get_num_threads(), 1, num_blocks);
  at::parallel_for(0, workers, 1, [&](int64_t, int64_t) { per_thread(claim); });
}

// How many edges ahead the passes prefetch the rows they will read at random (h_src[j],
// grad_out[i]): once the features outgrow the cache, each edge's read is a memory-latency
// miss, and the index arrays say which rows come next. The look-ahead runs across rows (most
// rows of a sparse graph have one or two edges), up to the end of the edge arrays.
constexpr int64_t kPrefetchDistance = 8;

GAT_PYG_INLINE void prefetch_row(const void* row, int64_t bytes) {
  const char* p = static_cast<const char*>(row);
  for (int64_t offset = 0; offset < bytes; offset += 64) __builtin_prefetch(p + offset);
}

// A block: rows [r0, r1) of one CSR order and their edges [e0, e1), with, for each edge, the
// row it belongs to (relative to r0). Per-row work (a max, a sum, an output row) is done as
// flat loops over the block's edges that index per-row buffers through row_of, rather than as
// a loop per row: a sparse graph's rows have a handful of edges, and a loop per row would cost
// a mispredicted branch at the end of each (more than the row's arithmetic).
struct Block {
  int64_t r0, r1, e0, e1;
  const int32_t* row_of;
  GAT_PYG_INLINE int64_t rows() const { return r1 - r0; }
  GAT_PYG_INLINE int64_t edges() const { return e1 - e0; }
};

// row_of[e] for the edges of rows [r0, r1) of `ptr`, without a loop per row: each non-empty
// row marks its first edge, and a running maximum spreads the mark over the row's edges.
template <typename index_t>
GAT_PYG_INLINE Block make_block(const index_t* ptr, int64_t r0, int64_t r1, Buffer<int32_t>& buf) {
  const int64_t e0 = ptr[r0], e1 = ptr[r1], edges = e1 - e0;
  int32_t* row_of = buf.ensure(edges + 1);
#pragma omp simd
  for (int64_t e = 0; e <= edges; ++e) row_of[e] = 0;
  // Rows are increasing, so where empty rows share a first edge, the last (non-empty) one wins.
  for (int64_t r = r0; r < r1; ++r) row_of[ptr[r] - e0] = static_cast<int32_t>(r - r0);
  int32_t running = 0;
  for (int64_t e = 0; e < edges; ++e) {
    running = std::max(running, row_of[e]);
    row_of[e] = running;
  }
  return Block{r0, r1, e0, e1, row_of};
}

// per_row[row_of[e] * H + h] <- op(per_row[...], value[e * H + h]) over a block's edges, in
// edge order.
template <typename T, typename Op>
GAT_PYG_INLINE void reduce_rows(const Block& b, int64_t H, const T* value, T* per_row, Op op) {
  const int64_t edges = b.edges();
  for (int64_t e = 0; e < edges; ++e) {
    T* target = per_row + static_cast<int64_t>(b.row_of[e]) * H;
    const T* v = value + e * H;
#pragma omp simd
    for (int64_t h = 0; h < H; ++h) target[h] = op(target[h], v[h]);
  }
}

template <typename T>
GAT_PYG_INLINE void fill(T* out, int64_t n, T value) {
#pragma omp simd
  for (int64_t k = 0; k < n; ++k) out[k] = value;
}

// Per-head arithmetic on [H, C] rows: eight-float vectors for the 8x8 and 1x8 shapes, loops
// otherwise. `whole` says whether a 1x8 row may be read as 8 floats (Shape::whole); scratch
// rows written with whole = true need 8 writable floats (their buffers have 8 spare).

// The vector path applies to float arithmetic on float / bfloat16 rows.
template <typename D, typename T, typename... X>
constexpr bool kVectors = (D::k8x8 || D::k1x8) && std::is_same_v<T, float> &&
                          ((std::is_same_v<X, float> || std::is_same_v<X, c10::BFloat16>) && ...);

// Chunk c (of 8 lanes) of a row: head c of an 8x8 row, or a 1x8 row's values.
#if GAT_PYG_VEC8
template <typename D, typename T>
GAT_PYG_INLINE f32x8 chunk(const D& d, const T* row, int c, bool whole) {
  if constexpr (D::k8x8) return load8(row + 8 * c);
  else return load_first(row, d.C(), whole);
}
#endif

// o[h, c] += w[h] * x[h, c]
template <typename D, typename T, typename X>
GAT_PYG_INLINE void axpy_heads(const D& d, const T* __restrict w, const X* __restrict x,
                               bool x_whole, T* __restrict o) {
#if GAT_PYG_VEC8
  if constexpr (kVectors<D, T, X>) {
    for (int c = 0; c < (D::k8x8 ? 8 : 1); ++c)
      store8(o + 8 * c, load8(o + 8 * c) + w[c] * chunk(d, x, c, x_whole));
    return;
  }
#endif
  const int64_t H = d.H(), C = d.C();
  for (int64_t h = 0; h < H; ++h) {
    const T wh = w[h];
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) o[h * C + c] += wh * static_cast<T>(x[h * C + c]);
  }
}

// out[h] = sum_c a[h, c] * b[h, c]
template <typename D, typename T, typename A, typename B>
GAT_PYG_INLINE void dot_heads(const D& d, const A* __restrict a, bool a_whole,
                              const B* __restrict b, bool b_whole, T* __restrict out) {
#if GAT_PYG_VEC8
  if constexpr (kVectors<D, T, A, B>) {
    if constexpr (D::k8x8) {
      f32x8 p[8];
      for (int c = 0; c < 8; ++c) p[c] = load8(a + 8 * c) * load8(b + 8 * c);
      store8(out, sums8(p));
    } else {
      out[0] = sum8(chunk(d, a, 0, a_whole) * chunk(d, b, 0, b_whole));
    }
    return;
  }
#endif
  const int64_t H = d.H(), C = d.C();
  for (int64_t h = 0; h < H; ++h) {
    T sum = 0;
#pragma omp simd reduction(+ : sum)
    for (int64_t c = 0; c < C; ++c)
      sum += static_cast<T>(a[h * C + c]) * static_cast<T>(b[h * C + c]);
    out[h] = sum;
  }
}

// Per-thread scratch that outlives a call (so that repeated calls neither allocate nor touch
// fresh pages), released after a call that grew it beyond kKeepScratchBytes (a graph with a
// huge row). `Scratch` has trim(bytes).
constexpr int64_t kKeepScratchBytes = int64_t{16} << 20;

template <typename Scratch>
Scratch& thread_scratch() {
  static thread_local Scratch scratch;
  return scratch;
}

// Runs Kernel::run<isa>(args, scratch, block bounds [, block index]) over blocks, each thread
// with its own scratch, compiled for the active instruction set.
template <typename Kernel, bool wide, bool with_index = false>
void run_blocks(const std::vector<int64_t>& blocks, const typename Kernel::Args& args) {
  const int64_t num_blocks = static_cast<int64_t>(blocks.size()) - 1;
  const Isa isa = active_isa();
  parallel_blocks(num_blocks, [&](const auto& claim) {
    auto& scratch = thread_scratch<typename Kernel::Scratch>();
    for (int64_t b = claim(); b < num_blocks; b = claim()) {
      int64_t begin = blocks[b], end = blocks[b + 1];
      if constexpr (with_index) dispatch_isa<Kernel, wide>(isa, args, scratch, begin, end, b);
      else dispatch_isa<Kernel, wide>(isa, args, scratch, begin, end);
    }
    scratch.trim(kKeepScratchBytes);
  });
}

// ---------------------------------------------------------------------------------------------
// Forward, one block of destination rows. Steps, each over all the block's edges:
//   1. the variant writes the LeakyReLU-ed scores w[e, h] (Score::scores);
//   2. per row and head the max; w = exp(w - max) (a row of only -inf scores gives zeros);
//   3. per row and head the sum; alpha = w / sum (0 for a row whose sum is 0), written out;
//   4. with dropout, the kept weights alpha * keep; then, edge by edge, the weighted sum of
//      h_src[j] into the row's output, times 1 / (1 - p).
// Score (GATScore / GATv2Score) provides, for a block:
//   Scratch                                  per-thread buffers (default-constructed), trim()
//   scores(Scratch&, shape, graph, block, acc_t* w)       w[(e - e0) * H + h]
template <typename scalar_t, typename index_t, typename Score, typename Dims>
struct ForwardBlock {
  using acc_t = at::opmath_type<scalar_t>;

  struct Args {
    const Graph<index_t>& graph;
    const Score& score;
    const scalar_t* h_src;
    Dims dims;
    const HashDropout& dropout;
    scalar_t* out;
    scalar_t* alpha;
  };

  struct Scratch {
    Buffer<acc_t> w, kept, rows, acc;
    Buffer<int32_t> row_of;
    typename Score::Scratch score;
    void trim(int64_t bytes) {
      w.trim(bytes), kept.trim(bytes), rows.trim(bytes), acc.trim(bytes), row_of.trim(bytes);
      score.trim(bytes);
    }
  };

  template <Isa isa>
  static GAT_PYG_INLINE void run(const Args& a, Scratch& st, int64_t r0, int64_t r1) {
    const auto& g = a.graph;
    const auto d = for_isa<isa>(a.dims);
    constexpr bool kOneHead = Dims::kHeads == 1;
    const int64_t H = d.H(), HC = d.HC();
    const Block b = make_block(g.ptr, r0, r1, st.row_of);
    const int64_t edges = b.edges(), rows = b.rows(), n = edges * H;
    const int32_t* row_of = b.row_of;
    acc_t* w = st.w.ensure(n);
    acc_t* per_row = st.rows.ensure(rows * H);   // max, then 1 / sum, per row and head

    // 1. scores.
    a.score.scores(st.score, d, g, b, w);

    // 2. softmax numerators.
    const acc_t neg_inf = -std::numeric_limits<acc_t>::infinity();
    fill(per_row, rows * H, neg_inf);
    reduce_rows(b, H, w, per_row, [](acc_t m, acc_t v) { return std::max(m, v); });
    // A score of -inf weighs 0, and a row of only -inf gives 0 (not NaN): exp(-inf - 0).
#pragma omp simd
    for (int64_t k = 0; k < rows * H; ++k)
      per_row[k] = per_row[k] == neg_inf ? acc_t(0) : per_row[k];
    if constexpr (kOneHead) {
#pragma omp simd
      for (int64_t e = 0; e < edges; ++e) w[e] = exp_nonpositive(w[e] - per_row[row_of[e]]);
    } else {
      for (int64_t e = 0; e < edges; ++e) {
        const acc_t* m = per_row + static_cast<int64_t>(row_of[e]) * H;
#pragma omp simd
        for (int64_t h = 0; h < H; ++h) w[e * H + h] -= m[h];
      }
#pragma omp simd
      for (int64_t k = 0; k < n; ++k) w[k] = exp_nonpositive(w[k]);
    }

    // 3. normalise.
    fill(per_row, rows * H, acc_t(0));
    reduce_rows(b, H, w, per_row, [](acc_t s, acc_t v) { return s + v; });
#pragma omp simd
    for (int64_t k = 0; k < rows * H; ++k)
      per_row[k] = per_row[k] > acc_t(0) ? acc_t(1) / per_row[k] : acc_t(0);
    if constexpr (kOneHead) {
#pragma omp simd
      for (int64_t e = 0; e < edges; ++e) w[e] *= per_row[row_of[e]];
    } else {
      for (int64_t e = 0; e < edges; ++e) {
        const acc_t* s = per_row + static_cast<int64_t>(row_of[e]) * H;
#pragma omp simd
        for (int64_t h = 0; h < H; ++h) w[e * H + h] *= s[h];
      }
    }
    scalar_t* alpha = a.alpha + b.e0 * H;
#pragma omp simd
    for (int64_t k = 0; k < n; ++k) alpha[k] = static_cast<scalar_t>(w[k]);

    // 4. aggregation.
    const acc_t* kept = w;
    if (a.dropout.active()) {
      acc_t* k = st.kept.ensure(n);
      a.dropout.template apply<isa>(static_cast<uint64_t>(b.e0 * H), n, w, k);
      kept = k;
    }
    // float32 accumulates in the output rows themselves (except 1x8 rows, whose 8-float
    // stores would reach into the next row: a row another thread may be writing); bfloat16 in
    // a float32 buffer.
    constexpr bool kDirect = std::is_same_v<acc_t, scalar_t> && !Dims::k1x8;
    acc_t* acc;
    if constexpr (kDirect) acc = a.out + r0 * HC;
    else acc = st.acc.ensure(rows * HC + 8);
    fill(acc, rows * HC, acc_t(0));
    const index_t* src = g.src + b.e0;
    const scalar_t* h_src = a.h_src;
    const int64_t ahead = std::min<int64_t>(kPrefetchDistance, g.num_edges - b.e0);
    for (int64_t e = 0; e < edges; ++e) {
      if (e < g.num_edges - b.e0 - ahead)
        prefetch_row(h_src + static_cast<int64_t>(src[e + ahead]) * HC,
                     HC * static_cast<int64_t>(sizeof(scalar_t)));
      const int64_t j = src[e];
      axpy_heads(d, kept + e * H, h_src + j * HC, d.whole(j, g.num_src),
                 acc + static_cast<int64_t>(row_of[e]) * HC);
    }
    const acc_t scale = static_cast<acc_t>(a.dropout.scale());
    if constexpr (kDirect) {
      if (scale != acc_t(1)) {
#pragma omp simd
        for (int64_t k = 0; k < rows * HC; ++k) acc[k] *= scale;
      }
    } else {
      scalar_t* out = a.out + r0 * HC;
#pragma omp simd
      for (int64_t k = 0; k < rows * HC; ++k) out[k] = static_cast<scalar_t>(acc[k] * scale);
    }
  }
};

template <typename scalar_t, typename index_t, typename Score>
void attention_forward(const Graph<index_t>& graph, const Score& score, const scalar_t* h_src,
                       int64_t heads, int64_t channels, const HashDropout& dropout,
                       scalar_t* out, scalar_t* alpha) {
  constexpr bool wide = !std::is_same_v<scalar_t, double>;
  const auto blocks = balanced_blocks(graph.ptr, graph.num_dst);
  dispatch_shape<wide>(heads, channels, [&](auto dims) {
    using Kernel = ForwardBlock<scalar_t, index_t, Score, decltype(dims)>;
    run_blocks<Kernel, wide>(blocks, {graph, score, h_src, dims, dropout, out, alpha});
  });
}

// ---------------------------------------------------------------------------------------------
// Backward, in two passes.
// 1. Over blocks of destination rows (only when some score input needs a gradient): g edge by
//    edge (a dot product with h_src[j]), then flat over the block's edges the dropout mask,
//    grad_alpha and the softmax backward; the variant turns grad_score into what its source
//    pass reads (e.g. GAT's grad of the raw score) and writes its per-row and per-edge
//    gradients. What the source pass reads is kept in an [E, H] buffer.
// 2. Over blocks of sources, through t_ptr / t_perm / t_col: grad_h_src, and the variant's
//    per-source gradients (s_src, x_l).
//
// Score additionally provides:
//   bool wants_row_pass() / wants_source_pass()
//   prepare(num_row_blocks)                                allocate per-block partials
//   row_backward(Scratch&, shape, graph, block, block_index, acc_t* grad)
//       grad[(e - e0) * H + h] = grad_score on entry; on exit what source_backward reads
//   source_backward(Scratch&, shape, graph, source_block, const acc_t* grad)
//       source_block's "rows" are sources, its "edges" positions k in the source order
//       (edge t_perm[k], target t_col[k]); grad is the [E, H] buffer (destination order)
//   finish()                                               sum the partials, in block order
template <typename scalar_t, typename index_t, typename Score, typename Dims>
struct BackwardRowBlock {
  using acc_t = at::opmath_type<scalar_t>;

  struct Args {
    const Graph<index_t>& graph;
    Score& score;
    const scalar_t* h_src;
    const scalar_t* grad_out;
    const scalar_t* grad_alpha;   // nullable
    const scalar_t* alpha;
    Dims dims;
    const HashDropout& dropout;
    acc_t* grad_score;            // [E, H], or null: the block's own scratch
  };

  struct Scratch {
    Buffer<acc_t> grad, rows, upstream;
    Buffer<int32_t> row_of;
    typename Score::Scratch score;
    void trim(int64_t bytes) {
      grad.trim(bytes), rows.trim(bytes), upstream.trim(bytes), row_of.trim(bytes);
      score.trim(bytes);
    }
  };

  template <Isa isa>
  static GAT_PYG_INLINE void run(const Args& a, Scratch& st, int64_t r0, int64_t r1,
                                 int64_t block_index) {
    const auto& g = a.graph;
    const auto d = for_isa<isa>(a.dims);
    const int64_t H = d.H(), HC = d.HC();
    const Block b = make_block(g.ptr, r0, r1, st.row_of);
    const int64_t edges = b.edges(), rows = b.rows(), n = edges * H;
    const int32_t* row_of = b.row_of;
    acc_t* grad = a.grad_score ? a.grad_score + b.e0 * H : st.grad.ensure(n);
    // The block's rows of grad_out as acc_t (a copy for 1x8 rows, which may then be read as
    // 8 floats each).
    const acc_t* upstream;
    if constexpr (std::is_same_v<acc_t, scalar_t> && !Dims::k1x8) {
      upstream = a.grad_out + r0 * HC;
    } else {
      acc_t* copy = st.upstream.ensure(rows * HC + 8);
      const scalar_t* rows_out = a.grad_out + r0 * HC;
#pragma omp simd
      for (int64_t k = 0; k < rows * HC; ++k) copy[k] = static_cast<acc_t>(rows_out[k]);
      upstream = copy;
    }

    // g = <grad_out[i], h_src[j]> per head, edge by edge.
    const index_t* src = g.src + b.e0;
    const int64_t ahead = std::min<int64_t>(kPrefetchDistance, g.num_edges - b.e0);
    for (int64_t e = 0; e < edges; ++e) {
      if (e < g.num_edges - b.e0 - ahead)
        prefetch_row(a.h_src + static_cast<int64_t>(src[e + ahead]) * HC,
                     HC * static_cast<int64_t>(sizeof(scalar_t)));
      const int64_t j = src[e];
      dot_heads(d, upstream + static_cast<int64_t>(row_of[e]) * HC, true, a.h_src + j * HC,
                d.whole(j, g.num_src), grad + e * H);
    }
    // Dropout (g = dot / (1 - p) * keep) and grad_alpha.
    if (a.dropout.active()) {
      const acc_t scale = static_cast<acc_t>(a.dropout.scale());
#pragma omp simd
      for (int64_t k = 0; k < n; ++k) grad[k] *= scale;
      a.dropout.template apply<isa>(static_cast<uint64_t>(b.e0 * H), n, grad, grad);
    }
    if (a.grad_alpha) {
      const scalar_t* ga = a.grad_alpha + b.e0 * H;
#pragma omp simd
      for (int64_t k = 0; k < n; ++k) grad[k] += static_cast<acc_t>(ga[k]);
    }
    // Softmax backward: grad_score = alpha * (g - sum_row alpha * g).
    const scalar_t* alpha = a.alpha + b.e0 * H;
    acc_t* row_dot = st.rows.ensure(rows * H);
    fill(row_dot, rows * H, acc_t(0));
    for (int64_t e = 0; e < edges; ++e) {
      acc_t* s = row_dot + static_cast<int64_t>(row_of[e]) * H;
#pragma omp simd
      for (int64_t h = 0; h < H; ++h)
        s[h] += static_cast<acc_t>(alpha[e * H + h]) * grad[e * H + h];
    }
    if constexpr (Dims::kHeads == 1) {
#pragma omp simd
      for (int64_t e = 0; e < edges; ++e)
        grad[e] = static_cast<acc_t>(alpha[e]) * (grad[e] - row_dot[row_of[e]]);
    } else {
      for (int64_t e = 0; e < edges; ++e) {
        const acc_t* s = row_dot + static_cast<int64_t>(row_of[e]) * H;
#pragma omp simd
        for (int64_t h = 0; h < H; ++h)
          grad[e * H + h] = static_cast<acc_t>(alpha[e * H + h]) * (grad[e * H + h] - s[h]);
      }
    }
    a.score.row_backward(st.score, d, g, b, block_index, grad);
  }
};

template <typename scalar_t, typename index_t, typename Score, typename Dims>
struct BackwardSourceBlock {
  using acc_t = at::opmath_type<scalar_t>;

  struct Args {
    const Graph<index_t>& graph;
    const Score& score;
    const scalar_t* grad_out;
    const scalar_t* alpha;
    Dims dims;
    const HashDropout& dropout;
    const acc_t* grad_score;   // [E, H] from the row pass, or null
    scalar_t* grad_h_src;      // nullable
  };

  struct Scratch {
    Buffer<acc_t> acc, weight;
    Buffer<uint64_t> counters;
    Buffer<int32_t> source_of;
    typename Score::Scratch score;
    void trim(int64_t bytes) {
      acc.trim(bytes), weight.trim(bytes), counters.trim(bytes), source_of.trim(bytes);
      score.trim(bytes);
    }
  };

  template <Isa isa>
  static GAT_PYG_INLINE void run(const Args& a, Scratch& st, int64_t j0, int64_t j1) {
    const auto d = for_isa<isa>(a.dims);
    const Block b = make_block(a.graph.t_ptr, j0, j1, st.source_of);
    if (a.grad_h_src) grad_h_src<isa>(a, st, d, b);
    if (a.grad_score) a.score.source_backward(st.score, d, a.graph, b, a.grad_score);
  }

  // grad_h_src[j] = sum over the edges e = (j -> i) of alpha[e] keep / (1 - p) grad_out[i].
  template <Isa isa, typename D>
  static GAT_PYG_INLINE void grad_h_src(const Args& a, Scratch& st, const D& d, const Block& b) {
    const auto& g = a.graph;
    const int64_t H = d.H(), HC = d.HC();
    const int64_t edges = b.edges(), sources = b.rows(), n = edges * H;
    const index_t* perm = g.t_perm + b.e0;
    const index_t* col = g.t_col + b.e0;
    // The edges' weights alpha / (1 - p) * keep, in source order.
    acc_t* weight = st.weight.ensure(n);
    const acc_t scale = static_cast<acc_t>(a.dropout.scale());
    for (int64_t k = 0; k < edges; ++k) {
      const scalar_t* al = a.alpha + static_cast<int64_t>(perm[k]) * H;
#pragma omp simd
      for (int64_t h = 0; h < H; ++h) weight[k * H + h] = static_cast<acc_t>(al[h]) * scale;
    }
    if (a.dropout.active()) {
      uint64_t* counters = st.counters.ensure(n);   // edge * H + head
      for (int64_t k = 0; k < edges; ++k) {
        const uint64_t first = static_cast<uint64_t>(perm[k]) * static_cast<uint64_t>(H);
#pragma omp simd
        for (int64_t h = 0; h < H; ++h) counters[k * H + h] = first + static_cast<uint64_t>(h);
      }
      a.dropout.template apply<isa>(n, [counters](int64_t k) { return counters[k]; }, weight,
                                    weight);
    }
    constexpr bool kDirect = std::is_same_v<acc_t, scalar_t> && !D::k1x8;
    acc_t* acc;
    if constexpr (kDirect) acc = a.grad_h_src + b.r0 * HC;
    else acc = st.acc.ensure(sources * HC + 8);
    fill(acc, sources * HC, acc_t(0));
    const int64_t ahead = std::min<int64_t>(kPrefetchDistance, g.num_edges - b.e0);
    for (int64_t k = 0; k < edges; ++k) {
      if (k < g.num_edges - b.e0 - ahead)
        prefetch_row(a.grad_out + static_cast<int64_t>(col[k + ahead]) * HC,
                     HC * static_cast<int64_t>(sizeof(scalar_t)));
      const int64_t i = col[k];
      axpy_heads(d, weight + k * H, a.grad_out + i * HC, d.whole(i, g.num_dst),
                 acc + static_cast<int64_t>(b.row_of[k]) * HC);
    }
    if constexpr (!kDirect) {
      scalar_t* out = a.grad_h_src + b.r0 * HC;
#pragma omp simd
      for (int64_t k = 0; k < sources * HC; ++k) out[k] = static_cast<scalar_t>(acc[k]);
    }
  }
};

template <typename scalar_t, typename index_t, typename Score>
void attention_backward(const Graph<index_t>& graph, Score& score, const scalar_t* h_src,
                        const scalar_t* grad_out, const scalar_t* grad_alpha /* nullable */,
                        const scalar_t* alpha, int64_t heads, int64_t channels,
                        const HashDropout& dropout, scalar_t* grad_h_src /* nullable */) {
  using acc_t = at::opmath_type<scalar_t>;
  constexpr bool wide = !std::is_same_v<scalar_t, double>;
  Buffer<acc_t> grad_score;   // [E, H], read by the source pass
  const bool source_scores = score.wants_source_pass();
  acc_t* buffer = source_scores ? grad_score.ensure(graph.num_edges * heads) : nullptr;

  dispatch_shape<wide>(heads, channels, [&](auto dims) {
    using Dims = decltype(dims);
    if (score.wants_row_pass()) {
      using Kernel = BackwardRowBlock<scalar_t, index_t, Score, Dims>;
      const auto blocks = balanced_blocks(graph.ptr, graph.num_dst);
      score.prepare(static_cast<int64_t>(blocks.size()) - 1);
      run_blocks<Kernel, wide, true>(
          blocks, {graph, score, h_src, grad_out, grad_alpha, alpha, dims, dropout, buffer});
    }
    if (grad_h_src || source_scores) {
      using Kernel = BackwardSourceBlock<scalar_t, index_t, Score, Dims>;
      run_blocks<Kernel, wide>(balanced_blocks(graph.t_ptr, graph.num_src),
                               {graph, score, grad_out, alpha, dims, dropout, buffer, grad_h_src});
    }
  });
  score.finish();
}

}  // namespace gat_pyg
