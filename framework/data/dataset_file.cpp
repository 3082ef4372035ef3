#include "data/dataset_file.h"

#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>

#include "core/atomic_output.h"
#include "core/checksum.h"
#include "core/error.h"

namespace angle::data {
namespace {

// Closes an HDF5 handle at scope exit.
struct Handle {
  hid_t id;
  herr_t (*close)(hid_t);
  Handle(hid_t i, herr_t (*c)(hid_t)) : id(i), close(c) {}
  ~Handle() {
    if (id >= 0) close(id);
  }
  operator hid_t() const { return id; }
};

void write_string_attribute(hid_t object, const std::string& name, const std::string& value) {
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type, value.empty() ? 1 : value.size());
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle attribute(H5Acreate2(object, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  ANGLE_CHECK(attribute >= 0 && H5Awrite(attribute, type, value.c_str()) >= 0, "HDF5: cannot write attribute ", name);
}

void write_int_attribute(hid_t object, const std::string& name, int64_t value) {
  Handle space(H5Screate(H5S_SCALAR), H5Sclose);
  Handle attribute(H5Acreate2(object, name.c_str(), H5T_STD_I64LE, space, H5P_DEFAULT, H5P_DEFAULT), H5Aclose);
  ANGLE_CHECK(attribute >= 0 && H5Awrite(attribute, H5T_NATIVE_INT64, &value) >= 0, "HDF5: cannot write attribute ", name);
}

bool has_attribute(hid_t object, const std::string& name) { return H5Aexists(object, name.c_str()) > 0; }

std::string read_string_attribute(hid_t object, const std::string& name, const std::string& path) {
  ANGLE_CHECK(has_attribute(object, name), path, ": missing attribute '", name, "'");
  Handle attribute(H5Aopen(object, name.c_str(), H5P_DEFAULT), H5Aclose);
  Handle type(H5Aget_type(attribute), H5Tclose);
  ANGLE_CHECK(H5Tget_class(type) == H5T_STRING && !H5Tis_variable_str(type), path, ": attribute '", name,
              "' is not a fixed-length string");
  std::string value(H5Tget_size(type), '\0');
  H5Aread(attribute, type, value.data());
  value.resize(std::strlen(value.c_str()));
  return value;
}

int64_t read_int_attribute(hid_t object, const std::string& name, const std::string& path) {
  ANGLE_CHECK(has_attribute(object, name), path, ": missing attribute '", name, "'");
  Handle attribute(H5Aopen(object, name.c_str(), H5P_DEFAULT), H5Aclose);
  int64_t value = 0;
  ANGLE_CHECK(H5Aread(attribute, H5T_NATIVE_INT64, &value) >= 0, path, ": attribute '", name, "' is not an integer");
  return value;
}

template <typename T>
void write_vector(hid_t parent, const std::string& name, const std::vector<T>& data, hid_t file_type, hid_t mem_type) {
  hsize_t dims[1] = {data.size()};
  Handle space(H5Screate_simple(1, dims, nullptr), H5Sclose);
  Handle lcpl(H5Pcreate(H5P_LINK_CREATE), H5Pclose);
  H5Pset_create_intermediate_group(lcpl, 1);
  Handle dataset(H5Dcreate2(parent, name.c_str(), file_type, space, lcpl, H5P_DEFAULT, H5P_DEFAULT), H5Dclose);
  ANGLE_CHECK(dataset >= 0, "HDF5: cannot create dataset ", name);
  if (!data.empty())
    ANGLE_CHECK(H5Dwrite(dataset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data.data()) >= 0, "HDF5: cannot write ", name);
}

template <typename T>
std::vector<T> read_vector(hid_t file, const std::string& name, hid_t mem_type, const std::string& path) {
  ANGLE_CHECK(H5Lexists(file, name.c_str(), H5P_DEFAULT) > 0, path, ": missing dataset '", name, "'");
  Handle dataset(H5Dopen2(file, name.c_str(), H5P_DEFAULT), H5Dclose);
  Handle space(H5Dget_space(dataset), H5Sclose);
  ANGLE_CHECK(H5Sget_simple_extent_ndims(space) == 1, path, ": dataset '", name, "' is not one-dimensional");
  std::vector<T> out(static_cast<size_t>(H5Sget_simple_extent_npoints(space)));
  if (!out.empty())
    ANGLE_CHECK(H5Dread(dataset, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data()) >= 0, path, ": cannot read '",
                name, "' (file truncated or corrupt)");
  return out;
}

void write_strings(hid_t file, const std::string& name, const std::vector<std::string>& texts) {
  std::vector<const char*> pointers;
  for (const auto& t : texts) pointers.push_back(t.c_str());
  Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
  H5Tset_size(type, H5T_VARIABLE);
  H5Tset_cset(type, H5T_CSET_UTF8);
  write_vector(file, name, pointers, type, type);
}

// Failures are reported as one ANGLE error; HDF5's own stack dump would only add noise.
void silence_hdf5() { H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr); }

std::string column_path(const std::string& column, const char* what) { return "columns/" + column + "/" + what; }

const char* type_class_name(H5T_class_t type) {
  switch (type) {
    case H5T_FLOAT: return "floats";
    case H5T_STRING: return "strings";
    case H5T_INTEGER: return "integers";
    default: return "a non-numeric type";
  }
}

}  // namespace

DatasetInfo write_dataset(const std::string& path, const RawDataset& raw, const text::Tokenizer& tokenizer,
                          const std::string& tokenizer_source, size_t max_length, bool keep_text) {
  ANGLE_CHECK(raw.size() > 0, "no examples to write");
  silence_hdf5();
  AtomicOutput output(path);
  {
    Handle file(H5Fcreate(output.temp_path().c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT), H5Fclose);
    ANGLE_CHECK(file >= 0, path, ": cannot create HDF5 file");
    for (size_t c = 0; c < raw.columns.size(); ++c) {
      std::vector<int32_t> ids;
      std::vector<int64_t> offsets{0};
      const std::string prompt = c < raw.prompts.size() ? raw.prompts[c] : "";
      for (const std::string& text : raw.texts[c]) {
        for (int64_t id : tokenizer.encode_prompted(prompt, text, max_length)) ids.push_back(static_cast<int32_t>(id));
        offsets.push_back(static_cast<int64_t>(ids.size()));
      }
      write_vector(file, column_path(raw.columns[c], "ids"), ids, H5T_STD_I32LE, H5T_NATIVE_INT32);
      write_vector(file, column_path(raw.columns[c], "offsets"), offsets, H5T_STD_I64LE, H5T_NATIVE_INT64);
      if (keep_text) write_strings(file, "text/" + raw.columns[c], raw.texts[c]);
    }
    if (!raw.labels.empty()) write_vector(file, "labels", raw.labels, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT);
    if (!raw.weights.empty()) write_vector(file, "weights", raw.weights, H5T_IEEE_F32LE, H5T_NATIVE_FLOAT);

    nlohmann::json sources = nlohmann::json::array();
    for (const std::string& source : raw.sources)
      sources.push_back({{"path", source}, {"sha256", sha256_file(source)},
                         {"bytes", std::filesystem::file_size(source)}});
    std::string columns;
    for (const auto& c : raw.columns) columns += (columns.empty() ? "" : ",") + c;
    write_int_attribute(file, "schema_version", kSchemaVersion);
    write_string_attribute(file, "format", raw.format);
    write_string_attribute(file, "columns", columns);
    write_int_attribute(file, "count", static_cast<int64_t>(raw.size()));
    write_string_attribute(file, "tokenizer", tokenizer.fingerprint());
    write_string_attribute(file, "tokenizer_source", tokenizer_source);
    write_int_attribute(file, "max_length", static_cast<int64_t>(max_length));
    write_string_attribute(file, "sources", sources.dump());
    write_string_attribute(file, "created_by", "angle prepare 0.1.0");
    for (const auto& [k, v] : raw.attributes) write_string_attribute(file, k, v);
    for (size_t c = 0; c < raw.prompts.size(); ++c)
      if (!raw.prompts[c].empty()) write_string_attribute(file, "prompt_" + raw.columns[c], raw.prompts[c]);
    ANGLE_CHECK(H5Fflush(file, H5F_SCOPE_GLOBAL) >= 0, path, ": HDF5 flush failed");
  }
  output.commit();
  return DatasetFile(path).info();
}

DatasetFile::DatasetFile(const std::string& path) {
  info_.path = path;
  silence_hdf5();
  ANGLE_CHECK(std::filesystem::exists(path), path, ": no such file");
  ANGLE_CHECK(H5Fis_hdf5(path.c_str()) > 0, path, ": not an HDF5 file, or truncated");
  file_ = H5Fopen(path.c_str(), H5F_ACC_RDONLY, H5P_DEFAULT);
  ANGLE_CHECK(file_ >= 0, path, ": cannot open HDF5 file (truncated or corrupt)");
  ANGLE_CHECK(has_attribute(file_, "schema_version"), path,
              ": not an AnglE-HPC dataset (no schema_version attribute); create it with `angle prepare`");
  info_.schema_version = read_int_attribute(file_, "schema_version", path);
  ANGLE_CHECK(info_.schema_version <= kSchemaVersion, path, ": schema version ", info_.schema_version,
              " is newer than this build of angle supports (", kSchemaVersion, "); upgrade angle");
  info_.format = read_string_attribute(file_, "format", path);
  std::string columns = read_string_attribute(file_, "columns", path);
  for (size_t start = 0; start <= columns.size();) {
    size_t end = columns.find(',', start);
    if (end == std::string::npos) end = columns.size();
    info_.columns.push_back(columns.substr(start, end - start));
    start = end + 1;
  }
  info_.count = read_int_attribute(file_, "count", path);
  info_.tokenizer = read_string_attribute(file_, "tokenizer", path);
  info_.tokenizer_source = read_string_attribute(file_, "tokenizer_source", path);
  info_.max_length = read_int_attribute(file_, "max_length", path);
  for (const std::string& column : info_.columns) {
    offsets_.push_back(read_vector<int64_t>(file_, column_path(column, "offsets"), H5T_NATIVE_INT64, path));
    const auto& o = offsets_.back();
    ANGLE_CHECK(static_cast<int64_t>(o.size()) == info_.count + 1, path, ": column '", column, "' has ",
                o.size(), " offsets for ", info_.count, " examples");
    Handle ids(H5Dopen2(file_, column_path(column, "ids").c_str(), H5P_DEFAULT), H5Dclose);
    ANGLE_CHECK(ids >= 0, path, ": missing dataset '", column_path(column, "ids"), "'");
    Handle space(H5Dget_space(ids), H5Sclose);
    // (HDF5 would convert floats to integers on read, silently truncating them.)
    Handle type(H5Dget_type(ids), H5Tclose);
    ANGLE_CHECK(H5Tget_class(type) == H5T_INTEGER, path, ": column '", column, "': token ids stored as ",
                type_class_name(H5Tget_class(type)), ", not integers");
    for (size_t i = 0; i + 1 < o.size(); ++i)
      ANGLE_CHECK(o[i] <= o[i + 1], path, ": column '", column, "' offsets decrease at example ", i);
    ANGLE_CHECK(o.front() == 0 && o.back() == H5Sget_simple_extent_npoints(space), path, ": column '", column,
                "' offsets do not cover its ids");
  }
  info_.has_labels = H5Lexists(file_, "labels", H5P_DEFAULT) > 0;
  info_.has_weights = H5Lexists(file_, "weights", H5P_DEFAULT) > 0;
  if (info_.has_labels) labels_ = read_vector<float>(file_, "labels", H5T_NATIVE_FLOAT, path);
  if (info_.has_weights) weights_ = read_vector<float>(file_, "weights", H5T_NATIVE_FLOAT, path);
  ANGLE_CHECK(!info_.has_labels || static_cast<int64_t>(labels_.size()) == info_.count, path, ": ", labels_.size(),
              " labels for ", info_.count, " examples");
  ANGLE_CHECK(info_.format != "A" || info_.has_labels, path, ": format A without labels");
  ANGLE_CHECK(!info_.has_weights || static_cast<int64_t>(weights_.size()) == info_.count, path, ": ", weights_.size(),
              " weights for ", info_.count, " examples");
  for (size_t i = 0; i < weights_.size(); ++i)
    ANGLE_CHECK(std::isfinite(weights_[i]) && weights_[i] >= 0, path, ": weights[", i, "] = ", weights_[i],
                ": weights must be finite and >= 0");
  for (size_t i = 0; i < labels_.size(); ++i)
    ANGLE_CHECK(std::isfinite(labels_[i]), path, ": labels[", i, "] = ", labels_[i], " is not finite");
  if (!labels_.empty()) {
    info_.label_min = *std::min_element(labels_.begin(), labels_.end());
    info_.label_max = *std::max_element(labels_.begin(), labels_.end());
  }
  for (const std::string& column : info_.columns)
    info_.prompts.push_back(has_attribute(file_, "prompt_" + column)
                                ? read_string_attribute(file_, "prompt_" + column, path) : "");
  if (has_attribute(file_, "label_range")) info_.label_range = read_string_attribute(file_, "label_range", path);
}

DatasetFile::~DatasetFile() {
  if (file_ >= 0) H5Fclose(file_);
}

void DatasetFile::require_tokenizer(const text::Tokenizer& tokenizer, const std::string& model_dir) const {
  ANGLE_CHECK(tokenizer.fingerprint() == info_.tokenizer, info_.path, " was prepared with tokenizer ", info_.tokenizer,
              " (", info_.tokenizer_source, ") but the model ", model_dir, " has tokenizer ", tokenizer.fingerprint(),
              "; prepare the data again with --model ", model_dir);
}

void DatasetFile::check_ids(int64_t vocab, int64_t first, int64_t end) const {
  constexpr hsize_t kBlock = hsize_t{1} << 20;
  for (size_t c = 0; c < info_.columns.size() && first < end; ++c) {
    const auto& o = offsets_[c];
    Handle dataset(H5Dopen2(file_, column_path(info_.columns[c], "ids").c_str(), H5P_DEFAULT), H5Dclose);
    Handle file_space(H5Dget_space(dataset), H5Sclose);
    std::vector<int64_t> buffer;
    for (auto at = static_cast<hsize_t>(o[first]); at < static_cast<hsize_t>(o[end]);) {
      hsize_t count = std::min(kBlock, static_cast<hsize_t>(o[end]) - at);
      buffer.resize(count);
      H5Sselect_hyperslab(file_space, H5S_SELECT_SET, &at, nullptr, &count, nullptr);
      Handle memory_space(H5Screate_simple(1, &count, nullptr), H5Sclose);
      ANGLE_CHECK(H5Dread(dataset, H5T_NATIVE_INT64, memory_space, file_space, H5P_DEFAULT, buffer.data()) >= 0,
                  info_.path, ": cannot read token ids (file truncated or corrupt)");
      for (hsize_t i = 0; i < count; ++i) {
        if (buffer[i] >= 0 && buffer[i] < vocab) continue;
        const auto position = static_cast<int64_t>(at + i);
        const auto row = std::upper_bound(o.begin(), o.end(), position) - o.begin() - 1;
        ANGLE_FAIL(info_.path, ": column '", info_.columns[c], "', row ", row, ", token ", position - o[row], ": id ",
                   buffer[i], " is outside the model's vocabulary [0, ", vocab, ")");
      }
      at += count;
    }
  }
}

std::vector<Example> DatasetFile::read(const std::vector<uint64_t>& indices) const {
  std::vector<Example> out(indices.size());
  for (size_t c = 0; c < info_.columns.size(); ++c) {
    const auto& o = offsets_[c];
    Handle dataset(H5Dopen2(file_, column_path(info_.columns[c], "ids").c_str(), H5P_DEFAULT), H5Dclose);
    Handle file_space(H5Dget_space(dataset), H5Sclose);
    // Distinct examples in file order: an OR-ed hyperslab selection is read in file order.
    std::vector<uint64_t> rows(indices);
    for (uint64_t index : rows)
      ANGLE_CHECK(static_cast<int64_t>(index) < info_.count, info_.path, ": example ", index, " out of range");
    std::sort(rows.begin(), rows.end());
    rows.erase(std::unique(rows.begin(), rows.end()), rows.end());
    H5Sselect_none(file_space);
    std::map<uint64_t, hsize_t> start_in_buffer;
    hsize_t total = 0;
    for (uint64_t index : rows) {
      hsize_t start = static_cast<hsize_t>(o[index]), count = static_cast<hsize_t>(o[index + 1] - o[index]);
      if (count) H5Sselect_hyperslab(file_space, H5S_SELECT_OR, &start, nullptr, &count, nullptr);
      start_in_buffer[index] = total;
      total += count;
    }
    std::vector<int32_t> buffer(total);
    Handle memory_space(H5Screate_simple(1, &total, nullptr), H5Sclose);
    if (total)
      ANGLE_CHECK(H5Dread(dataset, H5T_NATIVE_INT32, memory_space, file_space, H5P_DEFAULT, buffer.data()) >= 0,
                  info_.path, ": cannot read token ids (file truncated or corrupt)");
    for (size_t i = 0; i < indices.size(); ++i) {
      auto begin = buffer.begin() + static_cast<std::ptrdiff_t>(start_in_buffer[indices[i]]);
      out[i].ids.emplace_back(begin, begin + (o[indices[i] + 1] - o[indices[i]]));
    }
  }
  for (size_t i = 0; i < indices.size(); ++i) {
    if (info_.has_labels) out[i].label = labels_[indices[i]];
    if (info_.has_weights) out[i].weight = weights_[indices[i]];
  }
  return out;
}

}  // namespace angle::data
