// transport_ipc.cpp — the cuda-ipc transport: MPI carries the handles and the barriers, the GPUs
// move the bytes, and IPC events order one rank's GPU work after another's without the host ever
// waiting for a GPU (see transport_ipc.h for the protocol; SPEC §4, notes/distributed.md).
#include "dist/transport_ipc.h"

#include <mpi.h>

#include <algorithm>
#include <deque>
#include <exception>
#include <vector>

#include "core/tensor.h"
#include "dist/dist.h"
#include "dist/mpi_check.h"
#include "dist/transport.h"

namespace moe {

namespace {

constexpr void* kCompute = nullptr;  // the default stream, where every op runs

// Every rank's handle, in rank order (collective): how mailboxes and events are shared once.
std::vector<IpcHandle> allgather_handles(const IpcHandle& mine) {
  std::vector<IpcHandle> all(static_cast<size_t>(dist().world));
  MPI_CHECK(MPI_Allgather(&mine, sizeof mine, MPI_BYTE, all.data(), sizeof mine, MPI_BYTE,
                          dist_comm()));
  return all;
}

// A device buffer of this rank that every peer has mapped: mine = my pointer, peer[q] = rank q's
// buffer as mapped here (peer[my rank] = mine).
class Mailbox {
 public:
  ~Mailbox() { release(); }
  size_t size() const { return size_; }
  // Grows to at least `bytes`; collective (every rank calls it with the same size). Growing
  // first waits until no rank's GPU can still be reading or writing the old buffers.
  void ensure(size_t bytes) {
    if (bytes <= size_) return;
    if (mine_ != nullptr) {
      ipc_sync();
      MPI_CHECK(MPI_Barrier(dist_comm()));
    }
    release();
    const int W = dist().world, me = dist().rank;
    mine_ = ipc_alloc(bytes);
    size_ = bytes;
    const std::vector<IpcHandle> all = allgather_handles(ipc_export(mine_));
    peer_.assign(static_cast<size_t>(W), nullptr);
    for (int q = 0; q < W; ++q) peer_[q] = q == me ? mine_ : ipc_open(all[q]);
  }
  char* mine() const { return static_cast<char*>(mine_); }
  char* peer(int q) const { return static_cast<char*>(peer_[static_cast<size_t>(q)]); }

 private:
  void release() {
    for (size_t q = 0; q < peer_.size(); ++q)
      if (peer_[q] != mine_) ipc_close(peer_[q]);
    peer_.clear();
    ipc_free(mine_);
    mine_ = nullptr;
    size_ = 0;
  }
  void* mine_ = nullptr;
  size_t size_ = 0;
  std::vector<void*> peer_;
};

// One IPC event per rank: mine to record, the peers' to wait on (created once, collectively).
class SharedEvent {
 public:
  SharedEvent() {
    const int W = dist().world, me = dist().rank;
    mine_ = ipc_event_create();
    const std::vector<IpcHandle> all = allgather_handles(ipc_event_export(mine_));
    peer_.assign(static_cast<size_t>(W), nullptr);
    for (int q = 0; q < W; ++q) peer_[q] = q == me ? mine_ : ipc_event_open(all[q]);
  }
  ~SharedEvent() {
    for (void* e : peer_)
      if (e != mine_) ipc_event_destroy(e);
    ipc_event_destroy(mine_);
  }
  SharedEvent(const SharedEvent&) = delete;
  SharedEvent& operator=(const SharedEvent&) = delete;
  void record(void* stream) { ipc_event_record(mine_, stream); }
  // `stream` waits for every peer's latest record. Only call it after a barrier that every peer
  // reached after recording (and before recording again): see transport_ipc.h.
  void wait_peers(void* stream) {
    for (size_t q = 0; q < peer_.size(); ++q)
      if (peer_[q] != mine_) ipc_stream_wait(stream, peer_[q]);
  }

 private:
  void* mine_ = nullptr;
  std::vector<void*> peer_;
};

void barrier() { MPI_CHECK(MPI_Barrier(dist_comm())); }

// Device-timed intervals, read back once they have completed (collect never waits).
class Timings {
 public:
  enum Kind { kAllToAll, kAllReduce, kExposed };
  ~Timings() {
    for (void* e : free_) ipc_event_destroy(e);
    for (Span& s : pending_) {
      ipc_event_destroy(s.start);
      ipc_event_destroy(s.end);
    }
  }
  void* start(void* stream) {
    void* e = take();
    ipc_event_record(e, stream);
    return e;
  }
  // Ends the span begun by `start_ev` with an event recorded now on `stream`.
  void end(void* start_ev, void* stream, Kind kind, double bytes) {
    void* e = take();
    ipc_event_record(e, stream);
    pending_.push_back({start_ev, e, kind, bytes});
    // eval and finetune never ask for the stats: keep the queue (and its events) bounded by
    // draining what has completed as it grows (never waits).
    if (pending_.size() > kMaxPending) collect(comm_stats());
  }
  void collect(CommStats& st) {
    while (!pending_.empty()) {
      const Span s = pending_.front();
      float ms = 0;
      if (!timing_event_ms(s.start, s.end, &ms)) break;  // not done yet: next time
      const double sec = ms > 0 ? ms / 1e3 : 0.0;  // an exposed span may end before it starts
      if (s.kind == kAllToAll) {
        st.a2a_seconds += sec;
        st.a2a_bytes += s.bytes;
        ++st.a2a_calls;
      } else if (s.kind == kAllReduce) {
        st.ar_seconds += sec;
        st.ar_bytes += s.bytes;
        ++st.ar_calls;
      } else {
        st.ar_exposed_seconds += sec;
      }
      free_.push_back(s.start);
      free_.push_back(s.end);
      pending_.pop_front();
    }
  }

 private:
  static constexpr size_t kMaxPending = 1024;
  struct Span {
    void* start;
    void* end;
    Kind kind;
    double bytes;
  };
  void* take() {
    if (free_.empty()) return timing_event_create();
    void* e = free_.back();
    free_.pop_back();
    return e;
  }
  std::deque<Span> pending_;
  std::vector<void*> free_;
};

class CudaIpcTransport : public Transport {
 public:
  CudaIpcTransport() : comm_stream_(ipc_stream_create()) {
    CHECK(dist().world <= kMaxIpcRanks, "--transport cuda-ipc supports up to ", kMaxIpcRanks,
          " ranks, got ", dist().world, ". HINT: use --transport host");
  }
  ~CudaIpcTransport() override {
    try {
      ipc_sync();  // nothing of ours may still be queued when the buffers and events go
    } catch (const std::exception&) {
      // Unwinding after a device error: the process is ending; free what can be freed.
    }
    ipc_stream_destroy(comm_stream_);
    for (void* e : ready_) ipc_event_destroy(e);
  }
  std::string name() const override { return "cuda-ipc"; }
  bool asynchronous() const override { return true; }

  void all_to_all(const Tensor& send, Tensor& recv) override;
  void all_reduce(Tensor& x, double scale) override {
    all_reduce_start(x, scale);
    all_reduce_wait();
  }
  void all_reduce_start(Tensor& x, double scale) override;
  void all_reduce_wait() override;
  void collect_stats() override { timings_.collect(comm_stats()); }

 private:
  void* next_ready_event();

  Mailbox inbox_;                      // all-to-all: slot q holds what rank q sent me
  SharedEvent pushed_, drained_;       // all-to-all: "my chunks are sent", "my inbox is read"
  Mailbox ar_in_, ar_sums_;            // all-reduce: published inputs, summed slices
  SharedEvent published_, summed_, round_done_;
  void* comm_stream_;
  std::vector<void*> ready_;           // local events: "x is ready" on the compute stream
  size_t ready_used_ = 0;
  size_t round_bytes_ = 0;             // of the all-reduce mailboxes, used by this round
  bool round_open_ = false;
  void* round_first_ = nullptr;        // timing: the round's first busy span starts here
  Timings timings_;
};

void CudaIpcTransport::all_to_all(const Tensor& send, Tensor& recv) {
  const int W = dist().world, me = dist().rank;
  CHECK(send.device().is_cuda() && recv.device().is_cuda() && send.size(0) == W &&
            recv.shape() == send.shape() && send.is_contiguous() && recv.is_contiguous(),
        "cuda-ipc all-to-all: send ", send.desc(), " and recv ", recv.desc(),
        " must be contiguous GPU tensors of shape (W, ...)");
  const size_t bytes = static_cast<size_t>(send.numel()) * dtype_size(send.dtype());
  const size_t chunk = bytes / static_cast<size_t>(W);
  inbox_.ensure(bytes);
  void* t0 = timings_.start(kCompute);
  barrier();                          // every peer has recorded "drained" for the last exchange
  drained_.wait_peers(kCompute);      // ... and my stream will not write before it happened
  const char* src = static_cast<const char*>(send.raw_data());
  for (int k = 0; k < W; ++k) {  // start with the next rank, so the copy engines spread out
    const int r = (me + k) % W;
    ipc_copy(inbox_.peer(r) + static_cast<size_t>(me) * chunk,
             src + static_cast<size_t>(r) * chunk, chunk, kCompute);
  }
  pushed_.record(kCompute);
  barrier();                          // every peer has recorded "pushed" for this exchange
  pushed_.wait_peers(kCompute);       // every chunk has landed in my inbox
  ipc_copy(recv.raw_data(), inbox_.mine(), bytes, kCompute);
  drained_.record(kCompute);
  timings_.end(t0, kCompute, Timings::kAllToAll, static_cast<double>(bytes));
}

void* CudaIpcTransport::next_ready_event() {
  if (ready_used_ == ready_.size()) ready_.push_back(timing_event_create());
  return ready_[ready_used_++];
}

void CudaIpcTransport::all_reduce_start(Tensor& x, double scale) {
  const int W = dist().world, me = dist().rank;
  CHECK(x.device().is_cuda() && x.dtype() == DType::F32 && x.is_contiguous(),
        "cuda-ipc all-reduce: ", x.desc(), " must be a contiguous f32 GPU tensor");
  const int64_t n = x.numel();
  const size_t bytes = static_cast<size_t>(n) * sizeof(float);
  const size_t off = round_bytes_;
  const size_t need = (off + bytes + 255) / 256 * 256;  // regions stay 256-byte aligned
  if (need > ar_in_.size()) {
    // A larger round than any before (the first step, or a new model): grow once; ensure()
    // waits until no rank can still be using the old regions.
    ar_in_.ensure(need);
    ar_sums_.ensure(need);
  }
  round_bytes_ = need;
  // The comm stream starts when x is complete on the compute stream.
  void* ready = next_ready_event();
  ipc_event_record(ready, kCompute);
  ipc_stream_wait(comm_stream_, ready);
  if (!round_open_) {
    // The last round's regions may be overwritten only once every peer has read them.
    barrier();
    round_done_.wait_peers(comm_stream_);
    round_open_ = true;
    round_first_ = nullptr;
  }
  void* t0 = timings_.start(comm_stream_);
  if (round_first_ == nullptr) round_first_ = t0;
  ipc_copy(ar_in_.mine() + off, x.raw_data(), bytes, comm_stream_);  // publish
  published_.record(comm_stream_);
  barrier();
  published_.wait_peers(comm_stream_);
  const int64_t per = (n + W - 1) / W;  // rank r owns [r*per, min(n, (r+1)*per))
  const int64_t lo = std::min<int64_t>(n, me * per), hi = std::min<int64_t>(n, lo + per);
  PeerPointers srcs{};
  for (int q = 0; q < W; ++q) srcs.p[q] = reinterpret_cast<const float*>(ar_in_.peer(q) + off);
  ipc_sum_slices(reinterpret_cast<float*>(ar_sums_.mine() + off) + lo, srcs, W, lo, hi - lo,
                 static_cast<float>(scale), comm_stream_);
  summed_.record(comm_stream_);
  barrier();
  summed_.wait_peers(comm_stream_);
  for (int q = 0; q < W; ++q) {  // gather every owner's slice
    const int64_t qlo = std::min<int64_t>(n, q * per), qhi = std::min<int64_t>(n, qlo + per);
    ipc_copy(static_cast<float*>(x.raw_data()) + qlo,
             reinterpret_cast<const float*>(ar_sums_.peer(q) + off) + qlo,
             static_cast<size_t>(qhi - qlo) * sizeof(float), comm_stream_);
  }
  timings_.end(t0, comm_stream_, Timings::kAllReduce, static_cast<double>(bytes));
}

void CudaIpcTransport::all_reduce_wait() {
  if (!round_open_) return;
  round_done_.record(comm_stream_);
  // Exposed: from the moment the compute stream arrives here to the end of the last all-reduce.
  void* arrive = timings_.start(kCompute);
  timings_.end(arrive, comm_stream_, Timings::kExposed, 0);
  void* done = next_ready_event();
  ipc_event_record(done, comm_stream_);
  ipc_stream_wait(kCompute, done);
  round_open_ = false;
  round_bytes_ = 0;
  ready_used_ = 0;
}

}  // namespace

std::unique_ptr<Transport> make_cuda_ipc_transport() {
  return std::make_unique<CudaIpcTransport>();
}

}  // namespace moe
