// A small JSON reader (RFC 8259) for manifest.json: parse into a tree of Values, then read typed
// fields. No exceptions: parse() reports "line L, column C: what was expected".
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace nbp::rt::json {

class Value {
 public:
  enum class Type { kNull, kBool, kNumber, kString, kArray, kObject };

  Type type() const { return type_; }
  bool is_null() const { return type_ == Type::kNull; }
  bool is_bool() const { return type_ == Type::kBool; }
  bool is_number() const { return type_ == Type::kNumber; }
  bool is_string() const { return type_ == Type::kString; }
  bool is_array() const { return type_ == Type::kArray; }
  bool is_object() const { return type_ == Type::kObject; }

  bool as_bool() const { return bool_; }
  double as_number() const { return number_; }
  // True when the number is an integer that fits int64 exactly.
  bool is_integer() const;
  int64_t as_int() const { return static_cast<int64_t>(number_); }
  const std::string& as_string() const { return string_; }
  const std::vector<Value>& items() const { return array_; }
  const std::map<std::string, Value>& members() const { return object_; }

  // Member lookup; nullptr when this is not an object or has no such key.
  const Value* find(const std::string& key) const;

  static const char* type_name(Type t);

 private:
  friend class Parser;
  Type type_ = Type::kNull;
  bool bool_ = false;
  double number_ = 0.0;
  std::string string_;
  std::vector<Value> array_;
  std::map<std::string, Value> object_;
};

// Parses `text`; on failure returns false and sets `error` to "line L, column C: ...".
bool parse(const std::string& text, Value* out, std::string* error);

}  // namespace nbp::rt::json
