#include "model/storage.h"

#include <c10/core/DeviceGuard.h>
#include <c10/core/StorageImpl.h>

namespace angle::model {

void free_storage(const at::Tensor& t) {
  c10::StorageImpl* s = t.storage().unsafeGetStorageImpl();
  s->set_data_ptr_noswap(s->allocator()->allocate(0));
  s->set_nbytes(0);
}

void alloc_storage(const at::Tensor& t) {
  // The CUDA caching allocator allocates on the current device: make it the tensor's.
  const c10::OptionalDeviceGuard on_its_device(t.device());
  c10::StorageImpl* s = t.storage().unsafeGetStorageImpl();
  const size_t bytes = static_cast<size_t>(t.numel()) * t.element_size();
  if (s->nbytes() == bytes) return;
  s->set_data_ptr_noswap(s->allocator()->allocate(bytes));
  s->set_nbytes(bytes);
}

bool has_storage(const at::Tensor& t) { return t.numel() == 0 || t.storage().nbytes() > 0; }

}  // namespace angle::model
