#include "shard/sharded_adamw.h"

#include <ATen/ATen.h>
#include <c10/core/GradMode.h>

#include <cmath>

#include "core/error.h"

namespace angle::shard {

ShardedAdamW::ShardedAdamW(const std::vector<std::pair<std::string, at::Tensor>>& params, comm::Comm& comm,
                           AdamWOptions options, const std::function<bool(const std::string&)>& decays)
    : comm_(comm), options_(options) {
  c10::NoGradGuard no_grad;
  for (const auto& [name, p] : params) {
    ANGLE_CHECK(p.scalar_type() == at::kFloat, "sharded AdamW keeps fp32 parameters; '", name, "' is ", p.scalar_type());
    offsets_.push_back(numel_);
    layout_.push_back({name, p.sizes().vec(), numel_});
    numel_ += p.numel();
    params_.push_back(p);
  }
  const int64_t world = comm_.size();
  padded_ = (numel_ + world - 1) / world * world;
  shard_size_ = padded_ / world;
  shard_begin_ = shard_size_ * comm_.rank();
  auto options_f32 = params_.front().options().dtype(at::kFloat).requires_grad(false);
  flat_params_ = at::zeros({padded_}, options_f32);
  flat_grads_ = at::zeros({padded_}, options_f32);
  at::Tensor decay = at::zeros({padded_}, options_f32);
  for (size_t i = 0; i < params_.size(); ++i) {
    at::Tensor view = flat_params_.narrow(0, offsets_[i], params_[i].numel());
    view.copy_(params_[i].detach().reshape(-1));
    params_[i].set_data(view.view(params_[i].sizes()));  // the model now trains the flat buffer
    if (decays(params[i].first)) decay.narrow(0, offsets_[i], params_[i].numel()).fill_(1);
  }
  decay_mask_ = decay.narrow(0, shard_begin_, shard_size_).clone();
  exp_avg_ = at::zeros({shard_size_}, options_f32);
  exp_avg_sq_ = at::zeros({shard_size_}, options_f32);
}

void ShardedAdamW::zero_grad() {
  for (at::Tensor& p : params_) p.mutable_grad().reset();
}

double ShardedAdamW::step(double lr, double max_grad_norm) {
  c10::NoGradGuard no_grad;
  flat_grads_.zero_();
  for (size_t i = 0; i < params_.size(); ++i)
    if (params_[i].grad().defined())
      flat_grads_.narrow(0, offsets_[i], params_[i].numel()).copy_(params_[i].grad().reshape(-1));
  at::Tensor grad = comm_.reduce_scatter_sum(flat_grads_);  // this shard, summed over ranks (fp32)
  at::Tensor norm_sq = grad.to(at::kDouble).pow(2).sum().reshape({1});  // on the comm's device
  comm_.all_reduce_sum(norm_sq);
  const double norm = std::sqrt(norm_sq.item<double>());
  if (max_grad_norm > 0) {
    const double coefficient = max_grad_norm / (norm + 1e-6);  // as torch.nn.utils.clip_grad_norm_
    if (coefficient < 1) grad.mul_(coefficient);
  }
  // torch.optim.AdamW, on this shard: decoupled decay, then the bias-corrected Adam step.
  ++step_;
  at::Tensor p = flat_params_.narrow(0, shard_begin_, shard_size_);
  if (options_.weight_decay != 0) p.mul_(1 - lr * options_.weight_decay * decay_mask_);
  exp_avg_.lerp_(grad, 1 - options_.beta1);
  exp_avg_sq_.mul_(options_.beta2).addcmul_(grad, grad, 1 - options_.beta2);
  const double bias1 = 1 - std::pow(options_.beta1, static_cast<double>(step_));
  const double bias2 = 1 - std::pow(options_.beta2, static_cast<double>(step_));
  at::Tensor denom = (exp_avg_sq_.sqrt() / std::sqrt(bias2)).add_(options_.eps);
  p.addcdiv_(exp_avg_, denom, -lr / bias1);
  at::Tensor shard = p.clone();  // the gather writes into the buffer that holds p
  comm_.all_gather_into(shard, flat_params_);
  return norm;
}

void ShardedAdamW::restore(const std::function<at::Tensor(const std::string&, int64_t, int64_t)>& read,
                           int64_t steps) {
  c10::NoGradGuard no_grad;
  const int64_t end = std::min(numel_, shard_begin_ + shard_size_), real = std::max<int64_t>(0, end - shard_begin_);
  auto fill = [&](const std::string& name, at::Tensor destination) {
    destination.zero_();  // the padding past numel stays 0
    if (real > 0) destination.narrow(0, 0, real).copy_(read(name, shard_begin_, end));
  };
  at::Tensor shard = at::empty({shard_size_}, flat_params_.options());
  fill("params", shard);
  fill("exp_avg", exp_avg_);
  fill("exp_avg_sq", exp_avg_sq_);
  comm_.all_gather_into(shard, flat_params_);
  step_ = steps;
}

uint64_t ShardedAdamW::state_bytes() const {
  return static_cast<uint64_t>(exp_avg_.nbytes() + exp_avg_sq_.nbytes());
}

}  // namespace angle::shard
