// SDK parameters: schema building, check_and_convert, Params::resolve and the typed getters.
#include <gtest/gtest.h>

#include <exprun/sdk/params.hpp>

#include <cmath>
#include <limits>
#include <map>
#include <string>
#include <vector>

namespace exprun::sdk {
namespace {

ParamSchema loss_schema() {
  return ParamSchema()
      .add_float("alpha", 2.1, "exponent near the target")
      .min(0)
      .add_float("theta", 0.5, "threshold")
      .min(0)
      .max(1)
      .add_int("worst", 0, "landmarks to weight")
      .min(0)
      .max(29)
      .add_bool("use_weight_map", true, "weight the foreground")
      .add_string("reduction", "mean", "how to reduce")
      .choices({"mean", "sum"})
      .add_int_list("image_size", std::vector<std::int64_t>{256, 256}, "width, height")
      .length(2)
      .min(16)
      .add_float_list("betas", std::vector<double>{0.9, 0.999}, "Adam betas")
      .length(2)
      .min(0)
      .max(1)
      .add_string_list("tags", std::vector<std::string>{}, "free tags")
      .add_float_map("focus", std::map<std::string, double>{}, "weight per landmark")
      .min(0)
      .add_string("root", std::nullopt, "where the data is");
}

std::optional<std::string> check(const ParamSchema& schema, const std::string& name,
                                 ParamValue& value) {
  const ParamSpec* spec = schema.find(name);
  EXPECT_NE(spec, nullptr) << name;
  return check_and_convert(*spec, value);
}

std::string resolve_error(const ParamSchema& schema, std::map<std::string, ParamValue> given) {
  try {
    Params::resolve(schema, std::move(given));
  } catch (const ParamError& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected ParamError";
  return "";
}

TEST(ParamSchemaTest, BuildsSpecsWithConstraints) {
  const ParamSchema s = loss_schema();
  ASSERT_EQ(s.specs().size(), 10u);
  const ParamSpec* theta = s.find("theta");
  ASSERT_NE(theta, nullptr);
  EXPECT_EQ(theta->type, ParamType::Float);
  EXPECT_EQ(theta->min, 0.0);
  EXPECT_EQ(theta->max, 1.0);
  EXPECT_FALSE(theta->required());
  EXPECT_EQ(std::get<double>(*theta->default_value), 0.5);
  EXPECT_EQ(theta->doc, "threshold");
  const ParamSpec* root = s.find("root");
  ASSERT_NE(root, nullptr);
  EXPECT_TRUE(root->required());
  EXPECT_EQ(s.find("image_size")->length, 2u);
  EXPECT_EQ(s.find("reduction")->choices, (std::vector<std::string>{"mean", "sum"}));
  EXPECT_EQ(s.find("nope"), nullptr);
}

TEST(ParamSchemaTest, ConstraintBeforeAnyParameterThrows) {
  EXPECT_THROW(ParamSchema().min(0), ParamError);
}

TEST(ParamsResolve, FillsDefaults) {
  const Params p = Params::resolve(loss_schema(), {{"root", std::string("/data")}});
  EXPECT_EQ(p.values().size(), 10u);
  EXPECT_DOUBLE_EQ(p.get_float("alpha"), 2.1);
  EXPECT_DOUBLE_EQ(p.get_float("theta"), 0.5);
  EXPECT_EQ(p.get_int("worst"), 0);
  EXPECT_TRUE(p.get_bool("use_weight_map"));
  EXPECT_EQ(p.get_string("reduction"), "mean");
  EXPECT_EQ(p.get_int_list("image_size"), (std::vector<std::int64_t>{256, 256}));
  EXPECT_EQ(p.get_float_list("betas"), (std::vector<double>{0.9, 0.999}));
  EXPECT_TRUE(p.get_string_list("tags").empty());
  EXPECT_TRUE(p.get_float_map("focus").empty());
  EXPECT_EQ(p.get_string("root"), "/data");
}

TEST(ParamsResolve, GivenValuesWin) {
  const Params p =
      Params::resolve(loss_schema(), {{"root", std::string("/d")},
                                      {"alpha", 1.5},
                                      {"worst", std::int64_t{12}},
                                      {"reduction", std::string("sum")},
                                      {"tags", std::vector<std::string>{"a", "b"}},
                                      {"focus", std::map<std::string, double>{{"Go", 3.0}}}});
  EXPECT_DOUBLE_EQ(p.get_float("alpha"), 1.5);
  EXPECT_EQ(p.get_int("worst"), 12);
  EXPECT_EQ(p.get_string("reduction"), "sum");
  EXPECT_EQ(p.get_string_list("tags"), (std::vector<std::string>{"a", "b"}));
  EXPECT_EQ(p.get_float_map("focus"), (std::map<std::string, double>{{"Go", 3.0}}));
}

TEST(ParamsResolve, MissingRequiredNamesIt) {
  EXPECT_EQ(resolve_error(loss_schema(), {}),
            "missing required parameter 'root' (string: where the data is)");
}

TEST(ParamsResolve, UnknownParameterNamesIt) {
  EXPECT_EQ(resolve_error(loss_schema(), {{"root", std::string("/d")}, {"alpah", 1.0}}),
            "unknown parameter 'alpah'");
}

TEST(ParamsResolve, BadValueNamesTheKey) {
  EXPECT_EQ(resolve_error(loss_schema(), {{"root", std::string("/d")}, {"theta", 1.5}}),
            "theta: expected number in [0.0, 1.0], found number 1.5");
}

TEST(ParamsResolve, IntegerBecomesANumber) {
  const Params p =
      Params::resolve(loss_schema(), {{"root", std::string("/d")}, {"alpha", std::int64_t{3}}});
  ASSERT_TRUE(std::holds_alternative<double>(p.get("alpha")));
  EXPECT_DOUBLE_EQ(p.get_float("alpha"), 3.0);
}

TEST(CheckAndConvert, IntToFloatAllowedFloatToIntNot) {
  const ParamSchema s = loss_schema();
  ParamValue two = std::int64_t{2};
  EXPECT_EQ(check(s, "alpha", two), std::nullopt);
  EXPECT_TRUE(std::holds_alternative<double>(two));
  EXPECT_EQ(std::get<double>(two), 2.0);

  ParamValue half = 2.5;
  EXPECT_EQ(check(s, "worst", half), "expected integer in [0.0, 29.0], found number 2.5");
  // Even a whole-valued float is not an integer.
  ParamValue whole = 3.0;
  EXPECT_EQ(check(s, "worst", whole), "expected integer in [0.0, 29.0], found number 3.0");
}

TEST(CheckAndConvert, MinAndMax) {
  const ParamSchema s = loss_schema();
  ParamValue low = -0.1;
  EXPECT_EQ(check(s, "alpha", low), "expected number >= 0.0, found number -0.1");
  ParamValue edge_low = 0.0, edge_high = 1.0;
  EXPECT_EQ(check(s, "theta", edge_low), std::nullopt);  // bounds are inclusive
  EXPECT_EQ(check(s, "theta", edge_high), std::nullopt);
  ParamValue high = std::int64_t{30};
  EXPECT_EQ(check(s, "worst", high), "expected integer in [0.0, 29.0], found integer 30");
  ParamValue nan = std::numeric_limits<double>::quiet_NaN();
  EXPECT_NE(check(s, "alpha", nan), std::nullopt);
  ParamValue inf = std::numeric_limits<double>::infinity();
  EXPECT_NE(check(s, "alpha", inf), std::nullopt);
}

TEST(CheckAndConvert, BoolAndStringAreNotInterchangeable) {
  const ParamSchema s = loss_schema();
  ParamValue one = std::int64_t{1};
  EXPECT_EQ(check(s, "use_weight_map", one), "expected boolean, found integer 1");
  ParamValue yes = std::string("true");
  EXPECT_EQ(check(s, "use_weight_map", yes), "expected boolean, found string \"true\"");
  ParamValue flag = true;
  EXPECT_EQ(check(s, "reduction", flag),
            "expected string (one of \"mean\", \"sum\"), found boolean true");
}

TEST(CheckAndConvert, Choices) {
  const ParamSchema s = loss_schema();
  ParamValue sum = std::string("sum");
  EXPECT_EQ(check(s, "reduction", sum), std::nullopt);
  ParamValue max = std::string("max");
  EXPECT_EQ(check(s, "reduction", max),
            "expected string (one of \"mean\", \"sum\"), found string \"max\"");
  ParamValue upper = std::string("Mean");  // choices are case-sensitive
  EXPECT_NE(check(s, "reduction", upper), std::nullopt);
}

TEST(CheckAndConvert, ListLengthAndElementRange) {
  const ParamSchema s = loss_schema();
  ParamValue ok = std::vector<std::int64_t>{128, 160};
  EXPECT_EQ(check(s, "image_size", ok), std::nullopt);
  ParamValue short_list = std::vector<std::int64_t>{128};
  EXPECT_EQ(check(s, "image_size", short_list),
            "expected list of integers of length 2 >= 16.0, found list of integers [128]");
  ParamValue small = std::vector<std::int64_t>{128, 8};
  EXPECT_EQ(check(s, "image_size", small),
            "expected list of integers of length 2 >= 16.0, found list of integers [128, 8]");
  ParamValue floats = std::vector<double>{128.0, 160.0};
  EXPECT_NE(check(s, "image_size", floats), std::nullopt);

  ParamValue betas = std::vector<double>{0.5, 1.5};
  EXPECT_EQ(check(s, "betas", betas),
            "expected list of numbers of length 2 in [0.0, 1.0], found list of numbers [0.5, 1.5]");
}

TEST(CheckAndConvert, IntegerListIsANumberList) {
  const ParamSchema s = loss_schema();
  ParamValue ints = std::vector<std::int64_t>{0, 1};
  EXPECT_EQ(check(s, "betas", ints), std::nullopt);
  ASSERT_TRUE(std::holds_alternative<std::vector<double>>(ints));
  EXPECT_EQ(std::get<std::vector<double>>(ints), (std::vector<double>{0.0, 1.0}));
}

// TOML gives no element type to an empty list; the loader hands it over as an empty list of
// numbers, which must be acceptable for every list type.
TEST(CheckAndConvert, EmptyListIsAnIntList) {
  ParamSpec ints;
  ints.name = "ints";
  ints.type = ParamType::IntList;
  ParamValue empty = std::vector<double>{};
  EXPECT_EQ(check_and_convert(ints, empty), std::nullopt);
  EXPECT_TRUE(std::holds_alternative<std::vector<std::int64_t>>(empty));
}

// `tags = []` reaches the SDK as an empty list of numbers and must be accepted as strings.
TEST(CheckAndConvert, EmptyListIsAStringList) {
  ParamSpec strings;
  strings.name = "strings";
  strings.type = ParamType::StringList;
  ParamValue empty = std::vector<double>{};
  EXPECT_EQ(check_and_convert(strings, empty), std::nullopt);
  EXPECT_TRUE(std::holds_alternative<std::vector<std::string>>(empty));
}

TEST(CheckAndConvert, FloatMap) {
  const ParamSchema s = loss_schema();
  ParamValue ok = std::map<std::string, double>{{"Go", 3.0}, {"Ar", 0.0}};
  EXPECT_EQ(check(s, "focus", ok), std::nullopt);
  ParamValue negative = std::map<std::string, double>{{"Go", -1.0}};
  EXPECT_EQ(check(s, "focus", negative),
            "expected table of numbers >= 0.0, found table of numbers { Go = -1.0 }");
  ParamValue list = std::vector<double>{1.0};
  EXPECT_NE(check(s, "focus", list), std::nullopt);
}

TEST(ParamValueText, TypeNamesAndRendering) {
  EXPECT_EQ(type_name(ParamType::FloatList), "list of numbers");
  EXPECT_EQ(type_name(ParamType::FloatMap), "table of numbers");
  EXPECT_EQ(type_of(ParamValue(std::int64_t{3})), ParamType::Int);
  EXPECT_EQ(type_of(ParamValue(std::vector<std::string>{})), ParamType::StringList);
  EXPECT_EQ(to_string(ParamValue(true)), "true");
  EXPECT_EQ(to_string(ParamValue(std::int64_t{-3})), "-3");
  EXPECT_EQ(to_string(ParamValue(2.0)), "2.0");
  EXPECT_EQ(to_string(ParamValue(0.5)), "0.5");
  EXPECT_EQ(to_string(ParamValue(1e-6)), "1e-06");
  EXPECT_EQ(to_string(ParamValue(std::string("cosine"))), "\"cosine\"");
  EXPECT_EQ(to_string(ParamValue(std::vector<std::int64_t>{1, 2})), "[1, 2]");
  EXPECT_EQ(to_string(ParamValue(std::vector<double>{1.0, 0.5})), "[1.0, 0.5]");
  EXPECT_EQ(to_string(ParamValue(std::vector<std::string>{"a", "b"})), "[\"a\", \"b\"]");
  EXPECT_EQ(to_string(ParamValue(std::map<std::string, double>{{"Go", 3.0}, {"Ar", 2.5}})),
            "{ Ar = 2.5, Go = 3.0 }");
  EXPECT_EQ(to_string(ParamValue(std::map<std::string, double>{})), "{}");
}

TEST(ParamsGetters, WrongTypeOrUndeclaredThrows) {
  const Params p = Params::resolve(loss_schema(), {{"root", std::string("/d")}});
  EXPECT_THROW(p.get_int("alpha"), ParamError);
  EXPECT_THROW(p.get_string("worst"), ParamError);
  try {
    p.get_float("nope");
    FAIL() << "expected ParamError";
  } catch (const ParamError& e) {
    EXPECT_EQ(std::string(e.what()), "parameter 'nope' was not declared");
  }
  // get_float reads an integer too.
  EXPECT_DOUBLE_EQ(p.get_float("worst"), 0.0);
  EXPECT_TRUE(p.has("root"));
  EXPECT_FALSE(p.has("nope"));
}

}  // namespace
}  // namespace exprun::sdk
