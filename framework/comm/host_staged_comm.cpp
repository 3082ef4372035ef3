#include "comm/host_staged_comm.h"

#include <ATen/ATen.h>

#include <functional>
#include <utility>

namespace angle::comm {

class HostStagedComm : public Comm {
 public:
  HostStagedComm(std::unique_ptr<Comm> inner, at::Device device) : inner_(std::move(inner)), device_(device) {}
  int rank() const override { return inner_->rank(); }
  int size() const override { return inner_->size(); }
  int local_rank() const override { return inner_->local_rank(); }
  int node() const override { return inner_->node(); }
  int node_size() const override { return inner_->node_size(); }
  std::string backend() const override { return inner_->backend() + " (" + device_.str() + " staged through host)"; }
  at::Device device() const override { return device_; }

 protected:
  // A host buffer holding `t` (always a copy, so that the result is written back explicitly).
  at::Tensor to_host(const at::Tensor& t) const {
    at::Tensor host = at::empty(t.sizes(), t.options().device(at::kCPU).pinned_memory(device_.is_cuda()));
    host.copy_(t);
    return host;
  }
  // The inner backend's wait and timeout name the collective this one is running.
  Comm& inner() {
    inner_->in_flight_ = in_flight_;
    inner_->set_timeout(timeout());
    return *inner_;
  }
  void do_all_reduce_sum(at::Tensor& t) override {
    at::Tensor host = to_host(t);
    inner().do_all_reduce_sum(host);
    t.copy_(host);
  }
  at::Tensor do_all_gather_rows(const at::Tensor& local, const std::vector<int64_t>& counts) override {
    return inner().do_all_gather_rows(to_host(local), counts).to(device_, /*non_blocking=*/false, /*copy=*/true);
  }
  at::Tensor do_reduce_scatter_sum(const at::Tensor& flat) override {
    return inner().do_reduce_scatter_sum(to_host(flat)).to(device_, false, true);
  }
  void do_all_gather_into(const at::Tensor& chunk, at::Tensor& flat_out) override {
    at::Tensor host_out = at::empty(flat_out.sizes(), flat_out.options().device(at::kCPU));
    inner().do_all_gather_into(to_host(chunk), host_out);
    flat_out.copy_(host_out);
  }
  void do_broadcast(at::Tensor& t, int root) override {
    at::Tensor host = to_host(t);
    inner().do_broadcast(host, root);
    t.copy_(host);
  }
  void do_barrier() override { inner().do_barrier(); }
  WorkPtr do_all_gather_into_async(const at::Tensor& chunk, at::Tensor& flat_out) override {
    at::Tensor host_chunk = to_host(chunk), host_out = at::empty(flat_out.sizes(), flat_out.options().device(at::kCPU));
    return staged(inner().do_all_gather_into_async(host_chunk, host_out), {host_chunk, host_out},
                  [host_out, flat_out]() mutable { flat_out.copy_(host_out); });
  }
  WorkPtr do_reduce_scatter_sum_async(const at::Tensor& flat, at::Tensor& out) override {
    at::Tensor host_flat = to_host(flat), host_out = at::empty(out.sizes(), out.options().device(at::kCPU));
    return staged(inner().do_reduce_scatter_sum_async(host_flat, host_out), {host_flat, host_out},
                  [host_out, out]() mutable { out.copy_(host_out); });
  }
  WorkPtr do_reduce_scatter_counts_async(const at::Tensor& flat, at::Tensor& out,
                                         const std::vector<int64_t>& counts) override {
    at::Tensor host_flat = to_host(flat), host_out = at::empty(out.sizes(), out.options().device(at::kCPU));
    return staged(inner().do_reduce_scatter_counts_async(host_flat, host_out, counts), {host_flat, host_out},
                  [host_out, out]() mutable { out.copy_(host_out); });
  }
  WorkPtr do_all_reduce_sum_async(at::Tensor& t) override {
    at::Tensor host = to_host(t);
    return staged(inner().do_all_reduce_sum_async(host), {host}, [host, t]() mutable { t.copy_(host); });
  }
  std::unique_ptr<Comm> do_split(int color, int key) override {
    return std::make_unique<HostStagedComm>(inner().do_split(color, key), device_);
  }
  void abort_all(int code) const override { inner_->abort_all(code); }

 private:
  // The inner work, then the copy of its result back to the device, once.
  class StagedWork : public Work {
   public:
    StagedWork(WorkPtr inner, std::vector<at::Tensor> host, std::function<void()> copy_back)
        : inner_(std::move(inner)), host_(std::move(host)), copy_back_(std::move(copy_back)) {}
    ~StagedWork() override { wait(); }
    bool test() override { return done_ || inner_->test(); }
    void wait() override {
      if (done_) return;
      inner_->wait();
      copy_back_();
      host_.clear();
      done_ = true;
    }

   private:
    WorkPtr inner_;
    std::vector<at::Tensor> host_;  // the host buffers the inner work reads and writes
    std::function<void()> copy_back_;
    bool done_ = false;
  };
  static WorkPtr staged(WorkPtr inner, std::vector<at::Tensor> host, std::function<void()> copy_back) {
    return std::make_unique<StagedWork>(std::move(inner), std::move(host), std::move(copy_back));
  }

  std::unique_ptr<Comm> inner_;
  at::Device device_;
};

std::unique_ptr<Comm> make_host_staged(std::unique_ptr<Comm> inner, at::Device device) {
  return std::make_unique<HostStagedComm>(std::move(inner), device);
}

}  // namespace angle::comm
