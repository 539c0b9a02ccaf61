// Whether a pickle's length fields fit in the pickle. LibTorch's unpickler allocates a string
// or byte buffer of whatever length a BINUNICODE/BINBYTES opcode declares before it reads the
// bytes, so a crafted 21 KB checkpoint made it zero-fill 3.6 GB (found by the checkpoint fuzz
// target). Its memo table likewise grows to whatever index a PUT names (25 GB for one crafted
// LONG_BINPUT). Python's pickletools would tell, but there is no C++ walker of pickle opcodes to
// use.
#pragma once

#include <string>

namespace exprun {

// "" when every opcode of `bytes` up to STOP is one of pickle protocol 2-4's, every length it
// declares lies within `bytes` and every memo index is below its length; else why not ("opcode 0x58 at byte 7919 declares 3623000000
// bytes, 13000 remain").
std::string pickle_length_problem(const std::string& bytes);

}  // namespace exprun
