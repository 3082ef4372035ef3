// `angle plan --calibrate`: measures, on the machine it runs on, the figures the time model needs
// (plan/time_plan.h): the model FLOP/s one thread achieves training the job's model (BERT family
// only) on the job's own first batch, at that batch's rows and 1/2, 1/4, 1/8 of them; the
// optimizer's and a memory copy's rates; and alpha / beta of the communicator (all-gathers of 8 B
// and 8 MiB, when run on several ranks). Collective.
#pragma once
#include <ostream>
#include <string>

#include "comm/comm.h"
#include "plan/time_plan.h"
#include "train/job_config.h"

namespace angle::plan {

// Returns the measured machine (cores: this node's hardware threads); rank 0's figures.
// Whether a backend's collectives run on the CPU cores that also compute (mpi, single, host
// staging) rather than beside the kernels (nccl, named "nccl (cuda:N)").
bool comm_on_cores(const std::string& backend);
Machine calibrate(const train::JobConfig& job, comm::Comm& comm);

void save_machine(const Machine& m, const std::string& path);

// `angle plan --job J --calibrate FILE`: calibrates on the job's communicator, and rank 0 saves
// the machine to `path` and says so on `out`. Collective.
void calibrate_into(const train::JobConfig& job, const std::string& path, std::ostream& out);
Machine load_machine(const std::string& path);

}  // namespace angle::plan
