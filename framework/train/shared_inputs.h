// Start-up checks across ranks (collective, before any work): every rank must see the same
// run.output_dir (a shared file system: each rank writes its checkpoint shard there) and the same
// input files (data and model). On a cluster a node-local path, or a stale copy of the data on one
// node, otherwise fails at the first checkpoint or trains silently on different data; here it is a
// one-line error on every rank that names the path and the host.
#pragma once
#include <string>
#include <vector>

#include "comm/comm.h"
#include "train/job_config.h"

namespace angle::train {

// Every rank's host name, in rank order (collective).
std::vector<std::string> all_hostnames(comm::Comm& comm);

// Rank 0 creates `dir` and writes a probe file every rank must read back; every rank writes one
// that rank 0 must see. The probes are removed. One rank: nothing to compare.
void check_shared_output_dir(comm::Comm& comm, const std::string& dir, const std::vector<std::string>& hosts);

// Each path's size and the checksum of its first and last 64 KiB are the same on every rank (a
// missing path counts as size -1).
void check_same_files(comm::Comm& comm, const std::vector<std::string>& paths, const std::vector<std::string>& hosts);

// The files a job reads: those of data.train, data.dev and data.test (a directory: its files) and the
// model directory's top-level files.
std::vector<std::string> job_input_files(const JobConfig& c);

}  // namespace angle::train
