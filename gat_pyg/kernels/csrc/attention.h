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
#pragma once

#include <ATen/OpMathType.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <limits>
#include <memory>
#include <vector>

namespace gat_pyg {

// A destination-sorted CSR graph and its transpose (see gat_pyg/kernels/attention.py).
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

// Attention dropout decided by a counter-based hash of (seed, edge position, head): the mask
// is a pure function of its coordinates, so it does not depend on how rows are split among
// threads, and backward regenerates it instead of storing it.
class AttentionDropout {
 public:
  AttentionDropout(double p, int64_t seed, int64_t heads)
      : active_(p > 0.0), heads_(heads), base_(mix(static_cast<uint64_t>(seed))) {
    // keep iff the hash's upper 32 bits >= p * 2^32: P(keep) = 1 - p to within 2^-32.
    threshold_ = p >= 1.0 ? (uint64_t{1} << 32)
                          : static_cast<uint64_t>(std::llround(p * 4294967296.0));
    // p = 1 drops everything; a scale of 0 (not inf) keeps 0 * scale from being NaN.
    scale_ = !active_ ? 1.0 : (p >= 1.0 ? 0.0 : 1.0 / (1.0 - p));
  }

  bool active() const { return active_; }
  double scale() const { return scale_; }

  bool keep(int64_t edge, int64_t head) const {
    if (!active_) return true;
    const uint64_t counter = static_cast<uint64_t>(edge * heads_ + head);
    return (mix(base_ + (counter + 1) * 0x9E3779B97F4A7C15ULL) >> 32) >= threshold_;
  }

 private:
  // SplitMix64's finaliser (Steele, Lea, Flood 2014): a bijective avalanche mix.
  static uint64_t mix(uint64_t z) {
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }

  bool active_;
  int64_t heads_;
  uint64_t base_;
  uint64_t threshold_;
  double scale_;
};

// LeakyReLU and its derivative (aten's leaky_relu_backward: the slope where z <= 0), without
// branches: the sign of z is random, so a branch would be mispredicted half the time.
template <typename T>
inline T leaky_relu(T z, T slope) {
  return std::max(z, T(0)) + slope * std::min(z, T(0));
}

template <typename T>
inline T leaky_relu_grad(T z, T slope) {
  return z > T(0) ? T(1) : slope;   // a select once vectorised (see -fno-trapping-math)
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

template <typename T>
std::unique_ptr<T[]> uninitialised(int64_t n) {
  return std::unique_ptr<T[]>(new T[static_cast<size_t>(std::max<int64_t>(n, 1))]);
}

// How many edges ahead the passes prefetch the rows they will read at random (h_src[j],
// grad_out[i]): once the features outgrow the cache, each edge's read is a memory-latency
// miss, and the index arrays say which rows come next. The look-ahead runs across rows (most
// rows of a sparse graph have one or two edges), up to the end of the edge arrays.
constexpr int64_t kPrefetchDistance = 8;

inline void prefetch_row(const void* row, int64_t bytes) {
  const char* p = static_cast<const char*>(row);
  for (int64_t offset = 0; offset < bytes; offset += 64) __builtin_prefetch(p + offset);
}

// Forward, per destination row: the row's scores first (kept, O(degree * H), to write alpha),
// with their running max per head; then one sweep that exponentiates each score once and
// accumulates exp(score - max) * keep * h_src[j] into the output row. h_src[j] is read once
// per edge and no per-edge feature vector is stored. (An online softmax that rescales the
// running sum whenever the max grows would read the same memory, since the scores are stored
// anyway, but exponentiate twice per edge and head: exp is most of the arithmetic here.)
//
// Score is the variant (GATScore / GATv2Score) with:
//   Scratch(const Score&)                          per-thread buffers
//   begin_row(Scratch&, i)                         loads the row's own terms
//   prefetch(j, e)                                 hints the memory forward(.., j, e, ..) reads
//   forward(Scratch&, i, j, e, acc_t* scores)      scores[h] of edge e = (j -> i), all heads
template <typename scalar_t, typename index_t, typename Score>
void attention_forward(const Graph<index_t>& graph, Score& score, const scalar_t* h_src,
                       int64_t heads, int64_t channels, const AttentionDropout& dropout,
                       scalar_t* out, scalar_t* alpha) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t hc = heads * channels;
  const acc_t neg_inf = -std::numeric_limits<acc_t>::infinity();
  const acc_t drop_scale = static_cast<acc_t>(dropout.scale());
  const auto blocks = balanced_blocks(graph.ptr, graph.num_dst);
  const int64_t num_blocks = static_cast<int64_t>(blocks.size()) - 1;

  parallel_blocks(num_blocks, [&](const auto& claim) {
    typename Score::Scratch scratch(score);
    std::vector<acc_t> peak(heads), total(heads), weighted(hc), weights;
    for (int64_t b = claim(); b < num_blocks; b = claim()) {
      for (int64_t i = blocks[b]; i < blocks[b + 1]; ++i) {
        const int64_t begin = graph.ptr[i], end = graph.ptr[i + 1];
        std::fill(peak.begin(), peak.end(), neg_inf);
        std::fill(total.begin(), total.end(), acc_t(0));
        std::fill(weighted.begin(), weighted.end(), acc_t(0));
        weights.resize(static_cast<size_t>((end - begin) * heads));
        if (end > begin) score.begin_row(scratch, i);
        for (int64_t e = begin; e < end; ++e) {
          if (e + kPrefetchDistance < graph.num_edges) {
            const int64_t ahead = e + kPrefetchDistance;
            score.prefetch(graph.src[ahead], ahead);
          }
          acc_t* s = weights.data() + (e - begin) * heads;
          score.forward(scratch, i, graph.src[e], e, s);
          for (int64_t h = 0; h < heads; ++h) peak[h] = std::max(peak[h], s[h]);
        }
        for (int64_t e = begin; e < end; ++e) {
          if (e + kPrefetchDistance < graph.num_edges)
            prefetch_row(h_src + graph.src[e + kPrefetchDistance] * hc, hc * sizeof(scalar_t));
          const scalar_t* x = h_src + static_cast<int64_t>(graph.src[e]) * hc;
          acc_t* w = weights.data() + (e - begin) * heads;
          for (int64_t h = 0; h < heads; ++h) {
            // A score of -inf weighs 0 (and a row of only -inf gives 0, not NaN).
            w[h] = w[h] == neg_inf ? acc_t(0) : std::exp(w[h] - peak[h]);
            total[h] += w[h];
            // A dropped edge adds 0 x h_src: cheaper than a mispredicted branch.
            const acc_t kept = w[h] * static_cast<acc_t>(dropout.keep(e, h));
            acc_t* acc = weighted.data() + h * channels;
            const scalar_t* xh = x + h * channels;
#pragma omp simd
            for (int64_t c = 0; c < channels; ++c) acc[c] += kept * static_cast<acc_t>(xh[c]);
          }
        }
        scalar_t* o = out + i * hc;
        for (int64_t h = 0; h < heads; ++h) {
          const acc_t inv = total[h] > 0 ? acc_t(1) / total[h] : acc_t(0);
          const acc_t f = inv * drop_scale;
          for (int64_t c = 0; c < channels; ++c)
            o[h * channels + c] = static_cast<scalar_t>(weighted[h * channels + c] * f);
          for (int64_t e = begin; e < end; ++e)
            alpha[e * heads + h] = static_cast<scalar_t>(weights[(e - begin) * heads + h] * inv);
        }
      }
    }
  });
}

// Backward, in two passes.
// 1. Over destination rows (only when some score input needs a gradient): g and the softmax
//    backward, grad_score written to an [E, H] buffer, then the variant's per-edge backward
//    (which may turn grad_score into what its source pass reads, e.g. GAT's grad of the raw
//    score) and per-row gradients (s_dst, x_r).
// 2. Over sources, through t_ptr / t_perm / t_col: grad_h_src and the variant's per-source
//    gradients (s_src, x_l).
//
// Score additionally provides:
//   prefetch_target(i, e)                      hints what source_backward(.., i, e, ..) reads
//   bool wants_row_pass() / wants_source_pass()
//   prepare(num_row_blocks)                                allocate per-block partials
//   begin_row_backward(Scratch&, i) / end_row_backward(Scratch&, i)
//   row_backward(Scratch&, block, i, j, e, acc_t* grad)    grad = grad_score[e, :]
//   begin_source(Scratch&, j) / end_source(Scratch&, j)
//   source_backward(Scratch&, j, i, e, const acc_t* grad)
//   finish()                                               sum the partials, in block order
template <typename scalar_t, typename index_t, typename Score>
void attention_backward(const Graph<index_t>& graph, Score& score, const scalar_t* h_src,
                        const scalar_t* grad_out, const scalar_t* grad_alpha /* nullable */,
                        const scalar_t* alpha, int64_t heads, int64_t channels,
                        const AttentionDropout& dropout, scalar_t* grad_h_src /* nullable */) {
  using acc_t = at::opmath_type<scalar_t>;
  const int64_t hc = heads * channels;
  const acc_t drop_scale = static_cast<acc_t>(dropout.scale());
  std::unique_ptr<acc_t[]> grad_score;

  if (score.wants_row_pass()) {
    grad_score = uninitialised<acc_t>(graph.num_edges * heads);
    const auto blocks = balanced_blocks(graph.ptr, graph.num_dst);
    const int64_t num_blocks = static_cast<int64_t>(blocks.size()) - 1;
    score.prepare(num_blocks);
    parallel_blocks(num_blocks, [&](const auto& claim) {
      typename Score::Scratch scratch(score);
      std::vector<acc_t> upstream(hc), row_dot(heads), g;
      for (int64_t b = claim(); b < num_blocks; b = claim()) {
        for (int64_t i = blocks[b]; i < blocks[b + 1]; ++i) {
          const int64_t begin = graph.ptr[i], end = graph.ptr[i + 1];
          if (end == begin) {
            score.begin_row_backward(scratch, i);
            score.end_row_backward(scratch, i);
            continue;
          }
          for (int64_t k = 0; k < hc; ++k) upstream[k] = static_cast<acc_t>(grad_out[i * hc + k]);
          std::fill(row_dot.begin(), row_dot.end(), acc_t(0));
          g.resize(static_cast<size_t>((end - begin) * heads));
          for (int64_t e = begin; e < end; ++e) {
            if (e + kPrefetchDistance < graph.num_edges) {
              const int64_t ahead = e + kPrefetchDistance, j = graph.src[ahead];
              prefetch_row(h_src + j * hc, hc * sizeof(scalar_t));
              score.prefetch(j, ahead);
            }
            const scalar_t* x = h_src + static_cast<int64_t>(graph.src[e]) * hc;
            for (int64_t h = 0; h < heads; ++h) {
              const scalar_t* xh = x + h * channels;
              const acc_t* uh = upstream.data() + h * channels;
              acc_t dot = 0;
#pragma omp simd reduction(+ : dot)
              for (int64_t c = 0; c < channels; ++c) dot += uh[c] * static_cast<acc_t>(xh[c]);
              acc_t gv = dot * drop_scale * static_cast<acc_t>(dropout.keep(e, h));
              if (grad_alpha) gv += static_cast<acc_t>(grad_alpha[e * heads + h]);
              g[(e - begin) * heads + h] = gv;
              row_dot[h] += static_cast<acc_t>(alpha[e * heads + h]) * gv;
            }
          }
          score.begin_row_backward(scratch, i);
          for (int64_t e = begin; e < end; ++e) {
            acc_t* gs = grad_score.get() + e * heads;
            for (int64_t h = 0; h < heads; ++h)
              gs[h] = static_cast<acc_t>(alpha[e * heads + h]) *
                      (g[(e - begin) * heads + h] - row_dot[h]);
            score.row_backward(scratch, b, i, static_cast<int64_t>(graph.src[e]), e, gs);
          }
          score.end_row_backward(scratch, i);
        }
      }
    });
  }

  if (grad_h_src || score.wants_source_pass()) {
    const auto blocks = balanced_blocks(graph.t_ptr, graph.num_src);
    const int64_t num_blocks = static_cast<int64_t>(blocks.size()) - 1;
    parallel_blocks(num_blocks, [&](const auto& claim) {
      typename Score::Scratch scratch(score);
      std::vector<acc_t> acc(hc);
      for (int64_t b = claim(); b < num_blocks; b = claim()) {
        for (int64_t j = blocks[b]; j < blocks[b + 1]; ++j) {
          std::fill(acc.begin(), acc.end(), acc_t(0));
          score.begin_source(scratch, j);
          const int64_t t_end = graph.t_ptr[j + 1];
          for (int64_t k = graph.t_ptr[j]; k < t_end; ++k) {
            if (k + kPrefetchDistance < graph.num_edges) {
              const int64_t e = graph.t_perm[k + kPrefetchDistance];
              const int64_t i = graph.t_col[k + kPrefetchDistance];
              if (grad_h_src) prefetch_row(grad_out + i * hc, hc * sizeof(scalar_t));
              __builtin_prefetch(alpha + e * heads);
              if (grad_score) __builtin_prefetch(grad_score.get() + e * heads);
              score.prefetch_target(i, e);
            }
            const int64_t e = graph.t_perm[k], i = graph.t_col[k];
            if (grad_h_src) {
              const scalar_t* up = grad_out + i * hc;
              for (int64_t h = 0; h < heads; ++h) {
                const acc_t w = static_cast<acc_t>(alpha[e * heads + h]) * drop_scale *
                                static_cast<acc_t>(dropout.keep(e, h));
                acc_t* ah = acc.data() + h * channels;
                const scalar_t* uh = up + h * channels;
#pragma omp simd
                for (int64_t c = 0; c < channels; ++c) ah[c] += w * static_cast<acc_t>(uh[c]);
              }
            }
            if (grad_score) score.source_backward(scratch, j, i, e, grad_score.get() + e * heads);
          }
          if (grad_h_src)
            for (int64_t k = 0; k < hc; ++k) grad_h_src[j * hc + k] = static_cast<scalar_t>(acc[k]);
          score.end_source(scratch, j);
        }
      }
    });
  }
  score.finish();
}

}  // namespace gat_pyg
