// The TorchScript declarations of a checkpoint's archive are checked before LibTorch compiles
// them: LibTorch 1.13 overflows its stack on some malformed ones (the checkpoint fuzz target's
// finding, tests/fuzz/regressions/checkpoint/torch_type_name_recursion).
#include <gtest/gtest.h>

#include <caffe2/serialize/inline_container.h>
#include <torch/torch.h>

#include <map>
#include <stdexcept>
#include <string>

#include "test_support.hpp"
#include "train/archive_declarations.hpp"
#include "train/pickle_lengths.hpp"

namespace exprun {
namespace {

// A zip archive as LibTorch writes it, holding `records` (names below "archive/").
std::string archive_of(const std::map<std::string, std::string>& records) {
  std::string bytes;
  {
    caffe2::serialize::PyTorchStreamWriter writer([&bytes](const void* data, std::size_t size) {
      bytes.append(static_cast<const char*>(data), size);
      return size;
    });
    for (const auto& [name, text] : records) writer.writeRecord(name, text.data(), text.size());
    writer.writeEndOfFile();
  }
  return bytes;
}

std::string refusal(const std::map<std::string, std::string>& records) {
  try {
    check_archive_declarations(archive_of(records));
  } catch (const std::runtime_error& e) {
    return e.what();
  }
  return "";
}

// What torch::serialize::OutputArchive writes, in the shapes a checkpoint has.
const std::map<std::string, std::string> kWritten = {
    {"code/__torch__.py",
     "class Module(Module):\n  __parameters__ = []\n  __buffers__ = [\"rng.cpu\", ]\n"
     "  __annotations__ = []\n  __annotations__[\"exprun.epoch\"] = int\n"
     "  __annotations__[\"exprun.landmark_symbols\"] = List[str]\n"
     "  model : __torch__.___torch_mangle_0.Module\n"},
    {"code/__torch__/___torch_mangle_0.py",
     "class Module(Module):\n  __parameters__ = [\"weight\", \"bias\", ]\n  __buffers__ = []\n"
     "  weight : Tensor\n  bias : Tensor\n  betas : Tuple[float, float]\n"},
    // PROTO 2, EMPTY_LIST, BINPUT 0, BINUNICODE "S", BINPUT 1, APPEND, STOP.
    {"data.pkl", std::string("\x80\x02]q\x00X\x01\x00\x00\x00Sq\x01"
                             "a.",
                             15)},
    {"code/__torch__.py.debug_pkl", std::string("\x80\x02)q\x00.", 6)},
};

TEST(ArchiveDeclarations, WhatOutputArchiveWritesPasses) { EXPECT_EQ(refusal(kWritten), ""); }

TEST(ArchiveDeclarations, AClassConstantWhereAMemberBelongsIsRefused) {
  auto records = kWritten;
  // The fuzz finding: "__parameters__" mutated into a class constant LibTorch recurses on.
  records["code/__torch__/___torch_mangle_0.py"] =
      "class Module(Module):\n  optimizerers__ = []\n  __buffers__ = []\n";
  const std::string message = refusal(records);
  EXPECT_NE(message.find("its TorchScript declarations are not of the form exprun writes "
                         "(code/__torch__/___torch_mangle_0.py:2: not a member declaration)"),
            std::string::npos)
      << message;
}

TEST(ArchiveDeclarations, AClassThatContainsItselfIsRefused) {
  auto records = kWritten;
  records["code/__torch__/___torch_mangle_0.py"] =
      "class Module(Module):\n  __parameters__ = []\n  __buffers__ = []\n"
      "  inner : __torch__.Module\n";
  const std::string message = refusal(records);
  EXPECT_NE(message.find("contains itself"), std::string::npos) << message;
}

std::string deep_type(int depth) {
  std::string type = "int";
  for (int i = 0; i < depth; ++i) type = "List[" + type + "]";
  return "class Module(Module):\n  x : " + type + "\n";
}

TEST(ArchiveDeclarations, OtherShapesAreRefused) {
  auto nested = kWritten;
  nested["code/__torch__/___torch_mangle_0.py"] = deep_type(8);
  EXPECT_EQ(refusal(nested), "");

  for (const std::string& bad : {
           std::string("class Module(Other):\n"),
           std::string("import os\nclass Module(Module):\n"),
           std::string("class Module(Module):\n  def forward(self):\n"),
           deep_type(40),
           std::string("class Module(Module):\n  __buffers__ = [\"a\\\"\", ]\n"),
           std::string("class Module(Module):\n  x : Tensor # comment\n"),
       }) {
    auto records = kWritten;
    records["code/__torch__/___torch_mangle_0.py"] = bad;
    EXPECT_NE(refusal(records), "") << bad;
  }
}

// The checkpoint fuzz finding: a BINUNICODE length of 3.6 GB in a 21 KB file, which LibTorch's
// unpickler zero-filled before reading.
TEST(ArchiveDeclarations, APickleLengthBeyondItsRecordIsRefused) {
  auto records = kWritten;
  records["data.pkl"] = std::string(
      "\x80\x02]q\x00X\x00\x00\x00\xd8Sq\x01"
      "a.",
      15);
  const std::string message = refusal(records);
  EXPECT_NE(message.find("its pickle data.pkl is malformed: opcode 0x58 at byte 5 declares "
                         "3623878656 bytes, 5 remain"),
            std::string::npos)
      << message;
  records = kWritten;
  records["code/__torch__.py.debug_pkl"] = std::string("\x80\x02\x8d\xff\xff\xff\xff", 7);
  EXPECT_NE(refusal(records).find("its pickle code/__torch__.py.debug_pkl is malformed"),
            std::string::npos);
}

TEST(PickleLengths, EveryOpcodeShapeIsWalkedToStop) {
  EXPECT_EQ(pickle_length_problem(std::string("\x80\x02(K\x01M\x02\x00J\x03\x00\x00\x00"
                                              "G\x00\x00\x00\x00\x00\x00\xf0?"
                                              "\x8a\x01\x05\x8c\x02hiccollections\nOrderedDict\n"
                                              "t.",
                                              56)),
            "");
  EXPECT_EQ(pickle_length_problem(std::string("\x80\x02]", 3)),
            "the pickle ends without its STOP opcode");
  EXPECT_EQ(pickle_length_problem("\x80"), "opcode 0x80 at byte 0 runs past the end");
  EXPECT_EQ(pickle_length_problem("cno newline"), "opcode 0x63 at byte 0 runs past the end");
  EXPECT_EQ(pickle_length_problem("!"), "opcode 0x21 at byte 0 is not a pickle opcode");
}

// The unpickler grows its memo table to the index a PUT names: a LONG_BINPUT of 1.6e9 (found by
// the checkpoint fuzz target, kept in tests/fuzz/regressions/checkpoint/memo_index_25_gb) asked
// for 25 GB.
TEST(PickleLengths, MemoIndicesStayWithinThePickle) {
  EXPECT_EQ(pickle_length_problem(std::string("\x80\x02]r\x01\x00\x00\x00j\x01\x00\x00\x00.", 14)),
            "");
  EXPECT_EQ(pickle_length_problem(std::string("\x80\x02]r\x2f\x66\x5f\x5f.", 9)),
            "opcode 0x72 at byte 3 uses memo index 1600087599, more than a pickle of 9 bytes "
            "can hold");
  EXPECT_EQ(pickle_length_problem(std::string("\x80\x02]j\x00\x00\x00\x01.", 9)),
            "opcode 0x6a at byte 3 uses memo index 16777216, more than a pickle of 9 bytes can "
            "hold");
  EXPECT_EQ(pickle_length_problem(std::string("\x80\x02]p3\n.", 7)), "");
  EXPECT_EQ(pickle_length_problem(std::string("\x80\x02]p99999999999\n.", 17)),
            "opcode 0x70 at byte 3 uses memo index 99999999999, more than a pickle of 17 bytes "
            "can hold");
  EXPECT_EQ(pickle_length_problem(std::string("\x80\x02]g-1\n.", 8)),
            "opcode 0x67 at byte 3 uses memo index -1, more than a pickle of 8 bytes can hold");
}

}  // namespace
}  // namespace exprun
