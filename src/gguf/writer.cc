// GGUF v3 writer: canonical encoding of metadata, tensor infos and padded tensor data.
#include "gguf/writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <limits>
#include <utility>

#include "core/byte_writer.h"
#include "core/check.h"
#include "core/checked_math.h"
#include "core/utf8.h"

namespace ztslm::gguf {
namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF"
constexpr uint32_t kDefaultAlignment = 32;
constexpr std::string_view kAlignmentKey = "general.alignment";

void put_string(ByteWriter& w, std::string_view s) {
  w.put_u64_le(s.size());
  w.put_string(s);
}

void put_scalar(ByteWriter& w, const Value& v) {
  switch (v.type()) {
    case ValueType::kUint8:
    case ValueType::kBool: w.put_u8(static_cast<uint8_t>(v.raw_uint())); break;
    case ValueType::kInt8: w.put_i8(static_cast<int8_t>(v.raw_int())); break;
    case ValueType::kUint16: w.put_u16_le(static_cast<uint16_t>(v.raw_uint())); break;
    case ValueType::kInt16: w.put_i16_le(static_cast<int16_t>(v.raw_int())); break;
    case ValueType::kUint32:
    case ValueType::kFloat32: w.put_u32_le(static_cast<uint32_t>(v.raw_uint())); break;  // f32 bits
    case ValueType::kInt32: w.put_i32_le(static_cast<int32_t>(v.raw_int())); break;
    case ValueType::kUint64:
    case ValueType::kFloat64: w.put_u64_le(v.raw_uint()); break;  // f64 bits
    case ValueType::kInt64: w.put_i64_le(v.raw_int()); break;
    case ValueType::kString: put_string(w, *v.as_string()); break;
    case ValueType::kArray: break;  // handled by put_value
  }
}

template <typename T>
void put_elem(ByteWriter& w, const T& x) {
  if constexpr (std::is_same_v<T, std::string>) {
    put_string(w, x);
  } else if constexpr (std::is_same_v<T, float>) {
    w.put_f32_le(x);
  } else if constexpr (std::is_same_v<T, double>) {
    w.put_f64_le(x);
  } else if constexpr (sizeof(T) == 1) {
    w.put_u8(static_cast<uint8_t>(x));
  } else if constexpr (sizeof(T) == 2) {
    w.put_u16_le(static_cast<uint16_t>(x));
  } else if constexpr (sizeof(T) == 4) {
    w.put_u32_le(static_cast<uint32_t>(x));
  } else {
    w.put_u64_le(static_cast<uint64_t>(x));
  }
}

void put_value(ByteWriter& w, const Value& v) {
  w.put_i32_le(static_cast<int32_t>(v.type()));
  if (v.type() != ValueType::kArray) {
    put_scalar(w, v);
    return;
  }
  w.put_i32_le(static_cast<int32_t>(v.elem_type()));
  w.put_u64_le(v.array_size());
  std::visit(
      [&w](const auto& items) {
        for (const auto& x : items) put_elem(w, x);
      },
      v.raw_array());
}

// The header (magic .. tensor infos .. padding) of a file with these parts; `tensors` carry
// their final offsets.
std::vector<std::byte> encode_header(uint32_t version, uint32_t alignment, const Metadata& md,
                                     std::span<const TensorInfo* const> tensors) {
  ByteWriter w;
  w.put_u32_le(kMagic);
  w.put_u32_le(version);
  w.put_i64_le(static_cast<int64_t>(tensors.size()));
  w.put_i64_le(static_cast<int64_t>(md.size()));
  for (const auto& [key, value] : md.entries()) {
    put_string(w, key);
    put_value(w, value);
  }
  for (const TensorInfo* t : tensors) {
    put_string(w, t->name);
    w.put_u32_le(t->n_dims);
    for (uint32_t i = 0; i < t->n_dims; ++i) w.put_i64_le(t->ne[i]);
    w.put_i32_le(static_cast<int32_t>(t->type));
    w.put_u64_le(t->offset);
  }
  if (!tensors.empty()) {
    const size_t pad = (alignment - w.size() % alignment) % alignment;
    w.put_zeros(pad);
  }
  return w.take();
}

size_t padding_after(uint64_t n_bytes, uint32_t alignment) {
  return static_cast<size_t>((alignment - n_bytes % alignment) % alignment);
}

// Fills the shape fields of `out` from `type` and `ne`; kInvalidArgument when they are invalid.
Status make_info(std::string name, TensorType type, std::span<const int64_t> ne, TensorInfo* out) {
  const std::string pname = printable(name, 64);
  if (name.empty() || name.size() > Limits().max_tensor_name_bytes || !is_valid_utf8(name)) {
    return Status::invalid_argument("invalid tensor name {}", pname);
  }
  const std::optional<TypeTraits> traits = tensor_type_traits(type);
  if (!traits.has_value()) {
    return Status::invalid_argument("tensor {} has unknown type {}", pname, type);
  }
  if (ne.size() > 4) {
    return Status::invalid_argument("tensor {} has {} dimensions", pname, ne.size());
  }
  out->ne = {1, 1, 1, 1};
  int64_t n_elements = 1;
  for (size_t i = 0; i < ne.size(); ++i) {
    if (ne[i] < 0) return Status::invalid_argument("tensor {} has a negative dimension", pname);
    out->ne[i] = ne[i];
    if (!checked_mul(n_elements, ne[i], &n_elements)) {
      return Status::invalid_argument("tensor {} element count overflows", pname);
    }
  }
  if (out->ne[0] % traits->block_elems != 0) {
    return Status::invalid_argument("tensor {} row is not a whole number of {} blocks", pname,
                                    traits->name);
  }
  uint64_t row_bytes = 0;
  uint64_t n_bytes = 0;
  if (!checked_mul(static_cast<uint64_t>(out->ne[0]) / traits->block_elems,
                   uint64_t{traits->block_bytes}, &row_bytes) ||
      !checked_mul(row_bytes, static_cast<uint64_t>(out->ne[1]), &n_bytes) ||
      !checked_mul(n_bytes, static_cast<uint64_t>(out->ne[2]), &n_bytes) ||
      !checked_mul(n_bytes, static_cast<uint64_t>(out->ne[3]), &n_bytes) ||
      n_bytes > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return Status::invalid_argument("tensor {} byte size overflows", pname);
  }
  out->name = std::move(name);
  out->type = type;
  out->n_dims = static_cast<uint32_t>(ne.size());
  out->n_elements = static_cast<uint64_t>(n_elements);
  out->row_bytes = row_bytes;
  out->n_bytes = n_bytes;
  return Status();
}

Status io_error(std::string_view what, const std::string& path, int err) {
  const std::string msg = str_format("cannot {} {}: {}", what, path, std::strerror(err));
  switch (err) {
    case ENOENT: return Status(StatusCode::kNotFound, msg);
    case EACCES:
    case EPERM:
    case EROFS: return Status(StatusCode::kPermissionDenied, msg);
    case ENOSPC:
    case EDQUOT: return Status(StatusCode::kResourceExhausted, msg);
    default: return Status(StatusCode::kInternal, msg);
  }
}

bool write_all(int fd, std::span<const std::byte> bytes) {
  while (!bytes.empty()) {
    const ssize_t n = ::write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    bytes = bytes.subspan(static_cast<size_t>(n));
  }
  return true;
}

}  // namespace

Status Writer::add_tensor(std::string name, TensorType type, std::span<const int64_t> ne,
                          std::span<const std::byte> data) {
  Pending p;
  ZTSLM_TRY(make_info(std::move(name), type, ne, &p.info));
  if (p.info.n_bytes != data.size()) {
    return Status::invalid_argument("tensor {} needs {} bytes, got {}", printable(p.info.name, 64),
                                    p.info.n_bytes, data.size());
  }
  for (const Pending& q : tensors_) {
    if (q.info.name == p.info.name) {
      return Status::invalid_argument("duplicate tensor name {}", printable(p.info.name, 64));
    }
  }
  p.bytes.assign(data.begin(), data.end());
  tensors_.push_back(std::move(p));
  return Status();
}

Status Writer::add_tensor_lazy(std::string name, TensorType type, std::span<const int64_t> ne,
                               std::function<void(std::span<std::byte>)> fill) {
  Pending p;
  ZTSLM_TRY(make_info(std::move(name), type, ne, &p.info));
  if (!fill) return Status::invalid_argument("tensor {} has no fill function", p.info.name);
  for (const Pending& q : tensors_) {
    if (q.info.name == p.info.name) {
      return Status::invalid_argument("duplicate tensor name {}", printable(p.info.name, 64));
    }
  }
  p.fill = std::move(fill);
  tensors_.push_back(std::move(p));
  return Status();
}

std::vector<std::byte> Writer::serialize_header(std::vector<TensorInfo>* infos) const {
  // Caller bug, not input: the alignment must be a non-zero power of two.
  ZTSLM_CHECK(is_power_of_two(alignment_));
  // general.alignment always agrees with the alignment used, so the output re-parses.
  const Value* a = metadata_.find(kAlignmentKey);
  const bool fix = a != nullptr ? a->as_u32() != alignment_ : alignment_ != kDefaultAlignment;
  Metadata fixed;
  if (fix) {
    fixed = metadata_;
    fixed.set(std::string(kAlignmentKey), Value::u32(alignment_));
  }
  infos->clear();
  infos->reserve(tensors_.size());
  uint64_t offset = 0;
  for (const Pending& p : tensors_) {
    infos->push_back(p.info);
    infos->back().offset = offset;
    offset += p.info.n_bytes + padding_after(p.info.n_bytes, alignment_);
  }
  std::vector<const TensorInfo*> ptrs;
  for (const TensorInfo& t : *infos) ptrs.push_back(&t);
  return encode_header(3, alignment_, fix ? fixed : metadata_, ptrs);
}

std::vector<std::byte> Writer::serialize() const {
  std::vector<TensorInfo> infos;
  std::vector<std::byte> out = serialize_header(&infos);
  for (const Pending& p : tensors_) {
    const size_t at = out.size();
    out.resize(at + static_cast<size_t>(p.info.n_bytes));
    if (p.fill) {
      p.fill(std::span<std::byte>(out.data() + at, static_cast<size_t>(p.info.n_bytes)));
    } else {
      std::copy(p.bytes.begin(), p.bytes.end(), out.begin() + static_cast<ptrdiff_t>(at));
    }
    out.resize(out.size() + padding_after(p.info.n_bytes, alignment_), std::byte{0});
  }
  return out;
}

Status Writer::write_file(const std::string& path) const {
  std::string tmp = path + ".tmp.XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) return io_error("create a temporary file for", path, errno);
  auto fail = [&](std::string_view what) {
    const int err = errno;
    ::close(fd);
    ::unlink(tmp.c_str());
    return io_error(what, path, err);
  };
  std::vector<TensorInfo> infos;
  if (!write_all(fd, serialize_header(&infos))) return fail("write");
  static constexpr std::byte kZeros[64] = {};
  std::vector<std::byte> scratch;
  for (const Pending& p : tensors_) {
    std::span<const std::byte> bytes = p.bytes;
    if (p.fill) {
      scratch.assign(static_cast<size_t>(p.info.n_bytes), std::byte{0});
      p.fill(scratch);
      bytes = scratch;
    }
    if (!write_all(fd, bytes)) return fail("write");
    size_t pad = padding_after(p.info.n_bytes, alignment_);
    while (pad > 0) {
      const size_t n = pad < sizeof(kZeros) ? pad : sizeof(kZeros);
      if (!write_all(fd, std::span<const std::byte>(kZeros, n))) return fail("write");
      pad -= n;
    }
  }
  if (::fchmod(fd, 0644) != 0 || ::fsync(fd) != 0) return fail("write");
  if (::close(fd) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return io_error("write", path, err);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    return io_error("rename into", path, err);
  }
  return Status();
}

std::vector<std::byte> serialize(const File& file) {
  ZTSLM_CHECK(is_power_of_two(file.alignment));
  std::vector<TensorInfo> infos;
  infos.reserve(file.tensors.size());
  uint64_t offset = 0;
  for (const TensorInfo& t : file.tensors) {
    ZTSLM_CHECK(t.data.size() == t.n_bytes);
    infos.push_back(t);
    infos.back().offset = offset;
    offset += t.n_bytes + padding_after(t.n_bytes, file.alignment);
  }
  std::vector<const TensorInfo*> ptrs;
  for (const TensorInfo& t : infos) ptrs.push_back(&t);
  std::vector<std::byte> out = encode_header(file.version, file.alignment, file.metadata, ptrs);
  for (const TensorInfo& t : file.tensors) {
    out.insert(out.end(), t.data.begin(), t.data.end());
    out.resize(out.size() + padding_after(t.n_bytes, file.alignment), std::byte{0});
  }
  return out;
}

}  // namespace ztslm::gguf
