// `angle plan --calibrate`: measures, on the machine it runs on, the figures the time model needs
// (plan/time_plan.h): the model FLOP/s one thread achieves training the job's model on the job's
// own first batch, and alpha / beta of the communicator (all-gathers of 8 B and 8 MiB, when run
// on several ranks). Collective.
#pragma once
#include <string>

#include "comm/comm.h"
#include "plan/time_plan.h"
#include "train/job_config.h"

namespace angle::plan {

// Returns the measured machine (cores: this node's hardware threads); rank 0's figures.
Machine calibrate(const train::JobConfig& job, comm::Comm& comm);

void save_machine(const Machine& m, const std::string& path);
Machine load_machine(const std::string& path);

}  // namespace angle::plan
