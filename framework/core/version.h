// The program's version (CMake's project version) and the source revision it was built from
// (`git describe --always --dirty` at build time, "unknown" outside a git checkout): printed by
// `angle --version` and recorded in every run's eval.json, so that a report can tell runs apart.
#pragma once

namespace angle {

const char* version();
const char* revision();

}  // namespace angle
