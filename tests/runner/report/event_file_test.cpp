// TensorBoard event files: written by exprun's EventFileWriter, read back by the tests' own
// reader (bitwise CRC-32C, generic protobuf walker).
#include "report/event_file_writer.hpp"

#include <gtest/gtest.h>

#include "event_file_reader.hpp"
#include "test_support.hpp"

namespace exprun {
namespace {

TEST(MaskedCrc32c, MatchesTheKnownCheckValue) {
  // CRC-32C("123456789") = 0xE3069283 (RFC 3720's check value), then TFRecord's mask.
  EXPECT_EQ(test::bitwise_crc32c("123456789"), 0xE3069283u);
  EXPECT_EQ(masked_crc32c("123456789"), test::masked(0xE3069283u));
}

TEST(EventFileWriter, StartsWithTheVersionEventThenHoldsEveryScalar) {
  test::TempDir dir("exprun-events");
  std::filesystem::path path;
  {
    EventFileWriter writer(dir / "train");
    path = writer.path();
    writer.add_scalar("train/loss", 1, 0.25, 1700000000.5);
    writer.add_scalar("val/mre_mm", 1, 1.5);
    writer.add_scalar("val_landmark_mre_mm/Go", 2, 3.75);
    writer.flush();
  }
  EXPECT_EQ(path.parent_path(), dir / "train");
  EXPECT_EQ(path.filename().string().rfind("events.out.tfevents.", 0), 0u);
  const auto events = test::read_event_file(path);
  ASSERT_EQ(events.size(), 4u);
  EXPECT_EQ(events[0].file_version, "brain.Event:2");
  EXPECT_TRUE(events[0].scalars.empty());
  ASSERT_EQ(events[1].scalars.size(), 1u);
  EXPECT_EQ(events[1].scalars[0].first, "train/loss");
  EXPECT_EQ(events[1].scalars[0].second, 0.25f);
  EXPECT_EQ(events[1].step, 1);
  EXPECT_EQ(events[1].wall_time, 1700000000.5);
  EXPECT_GT(events[2].wall_time, 1.7e9);
  EXPECT_EQ(events[3].scalars[0].first, "val_landmark_mre_mm/Go");
  EXPECT_EQ(events[3].scalars[0].second, 3.75f);
  EXPECT_EQ(events[3].step, 2);
}

TEST(EventFileWriter, ACorruptedByteIsCaughtByTheCrc) {
  test::TempDir dir("exprun-events");
  std::filesystem::path path;
  {
    EventFileWriter writer(dir.path());
    path = writer.path();
    writer.add_scalar("train/loss", 1, 0.5);
  }
  std::string bytes = test::read_text(path);
  bytes[bytes.size() - 6] ^= 0x01;  // inside the last payload
  test::write_text(path, bytes);
  EXPECT_THROW(test::read_event_file(path), std::runtime_error);
}

}  // namespace
}  // namespace exprun
