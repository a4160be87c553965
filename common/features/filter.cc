// ParseFilter: a hand-written tokenizer and recursive-descent parser for the
// small filter language of filter.h (no library parses a SQL-like boolean
// expression with our typing rules and column-accurate errors any simpler).
// The parser emits the postfix program as it recognises each construct, so
// the program's order is the parse order and needs no tree.
//
// Evaluation follows SQL's three-valued logic: a comparison on a field the
// event lacks is UNKNOWN, `not UNKNOWN` is UNKNOWN, and an event matches only
// when the whole filter is TRUE. So `not (country == 'DE')` does not match an
// event without a country, exactly as in SQL.
#include "common/features/filter.h"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace slipstream {
namespace {

// Evaluation stack bound: Matches uses a fixed array (no allocation per
// event), so the parser rejects filters that would need more.
constexpr int kMaxStackDepth = 64;
// Parser recursion bound (parentheses and `not`), so a hostile filter cannot
// overflow the C++ stack.
constexpr int kMaxNesting = 64;

enum class TokenKind : uint8_t { kEnd, kIdent, kString, kNumber, kOp, kLParen, kRParen, kComma };

struct Token {
  TokenKind kind = TokenKind::kEnd;
  std::string_view text;  // as written (strings: without quotes)
  int column = 1;         // 1-based
  char quote = 0;         // kString: the quote character
};

bool IsIdentStart(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }
bool IsIdentChar(char c) { return IsIdentStart(c) || (c >= '0' && c <= '9') || c == '.' || c == '-'; }
bool IsDigit(char c) { return c >= '0' && c <= '9'; }

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i], y = b[i];
    if (x >= 'A' && x <= 'Z') x = static_cast<char>(x - 'A' + 'a');
    if (y >= 'A' && y <= 'Z') y = static_cast<char>(y - 'A' + 'a');
    if (x != y) return false;
  }
  return true;
}

absl::Status ErrorAt(int column, const std::string& what) {
  return absl::InvalidArgumentError("column " + std::to_string(column) + ": " + what);
}

absl::StatusOr<std::vector<Token>> Tokenize(std::string_view text) {
  std::vector<Token> tokens;
  size_t i = 0;
  while (i < text.size()) {
    const char c = text[i];
    const int column = static_cast<int>(i) + 1;
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
      ++i;
      continue;
    }
    Token token;
    token.column = column;
    if (c == '\'' || c == '"') {
      // No escapes: text containing one kind of quote uses the other.
      const size_t end = text.find(c, i + 1);
      if (end == std::string_view::npos) {
        return ErrorAt(column, "unterminated text literal (no closing " + std::string(1, c) + ")");
      }
      token.kind = TokenKind::kString;
      token.quote = c;
      token.text = text.substr(i + 1, end - i - 1);
      i = end + 1;
    } else if (IsDigit(c) || ((c == '-' || c == '+' || c == '.') && i + 1 < text.size() &&
                              (IsDigit(text[i + 1]) || (text[i + 1] == '.' && c != '.')))) {
      size_t j = i + 1;
      while (j < text.size() && (IsDigit(text[j]) || text[j] == '.' || text[j] == 'e' || text[j] == 'E' ||
                                 ((text[j] == '-' || text[j] == '+') && (text[j - 1] == 'e' || text[j - 1] == 'E')))) {
        ++j;
      }
      token.kind = TokenKind::kNumber;
      token.text = text.substr(i, j - i);
      i = j;
    } else if (IsIdentStart(c)) {
      size_t j = i + 1;
      // '-' only inside a name (user-id), never at its end (a-1 is no issue:
      // there is no arithmetic).
      while (j < text.size() && IsIdentChar(text[j])) ++j;
      token.kind = TokenKind::kIdent;
      token.text = text.substr(i, j - i);
      i = j;
    } else if (c == '(' || c == ')' || c == ',') {
      token.kind = c == '(' ? TokenKind::kLParen : c == ')' ? TokenKind::kRParen : TokenKind::kComma;
      token.text = text.substr(i, 1);
      ++i;
    } else if (c == '=' || c == '!' || c == '<' || c == '>') {
      size_t len = 1;
      if (i + 1 < text.size()) {
        const char d = text[i + 1];
        if ((c == '=' && d == '=') || (c == '!' && d == '=') || (c == '<' && (d == '=' || d == '>')) ||
            (c == '>' && d == '=')) {
          len = 2;
        }
      }
      if (c == '!' && len == 1) return ErrorAt(column, "'!' is not an operator (write != or not)");
      token.kind = TokenKind::kOp;
      token.text = text.substr(i, len);
      i += len;
    } else {
      return ErrorAt(column, "unexpected character '" + std::string(1, c) + "'");
    }
    tokens.push_back(token);
  }
  Token end;
  end.kind = TokenKind::kEnd;
  end.column = static_cast<int>(text.size()) + 1;
  tokens.push_back(end);
  return tokens;
}

std::string Describe(const Token& token) {
  switch (token.kind) {
    case TokenKind::kEnd:
      return "the end of the filter";
    case TokenKind::kString:
      return std::string(1, token.quote) + std::string(token.text) + std::string(1, token.quote);
    default:
      return "'" + std::string(token.text) + "'";
  }
}

// Shortest text that reads back as `value` (canonical form of numbers).
std::string FormatDouble(double value) {
  std::array<char, 32> buffer;
  const auto result = std::to_chars(buffer.data(), buffer.data() + buffer.size(), value);
  return std::string(buffer.data(), result.ptr);
}

std::string QuoteText(std::string_view text) {
  const char quote = text.find('\'') == std::string_view::npos ? '\'' : '"';
  return std::string(1, quote) + std::string(text) + std::string(1, quote);
}

using Op = CompiledFilter::Op;

// A parsed literal, typed.
struct Literal {
  enum class Kind : uint8_t { kText, kInteger, kFractional, kBoolean } kind = Kind::kText;
  std::string text;     // kText
  int64_t integer = 0;  // kInteger, kBoolean (0/1)
  double number = 0;    // kInteger and kFractional
  int column = 1;
};

// Canonical text of a sub-expression and its precedence (for parentheses).
struct Piece {
  std::string text;
  int precedence = 3;  // 1 or, 2 and, 3 unary / comparison
};

class Parser {
 public:
  Parser(std::vector<Token> tokens, const InputSchema& schema)
      : tokens_(std::move(tokens)), schema_(schema) {}

  absl::StatusOr<Piece> ParseAll() {
    if (Peek().kind == TokenKind::kEnd) return ErrorAt(1, "the filter is empty");
    absl::StatusOr<Piece> piece = ParseOr(0);
    if (!piece.ok()) return piece;
    if (Peek().kind != TokenKind::kEnd) {
      return ErrorAt(Peek().column, "expected 'and', 'or' or the end of the filter, got " + Describe(Peek()));
    }
    return piece;
  }

  std::vector<Op> ops;
  std::vector<std::string> strings;
  std::vector<int64_t> longs;
  std::vector<double> doubles;

 private:
  const Token& Peek() const { return tokens_[pos_]; }
  const Token& Next() { return tokens_[pos_ < tokens_.size() - 1 ? pos_++ : pos_]; }
  bool PeekKeyword(std::string_view keyword, size_t ahead = 0) const {
    const size_t at = std::min(pos_ + ahead, tokens_.size() - 1);
    return tokens_[at].kind == TokenKind::kIdent && EqualsIgnoreCase(tokens_[at].text, keyword);
  }
  static bool IsKeyword(std::string_view word) {
    for (std::string_view k : {"and", "or", "not", "in", "true", "false"}) {
      if (EqualsIgnoreCase(word, k)) return true;
    }
    return false;
  }

  // Tracks the evaluation stack's depth as ops are emitted.
  absl::Status Emit(Op op, int column) {
    if (op.kind == Op::Kind::kAnd || op.kind == Op::Kind::kOr) {
      --depth_;
    } else if (op.kind != Op::Kind::kNot) {
      if (++depth_ > kMaxStackDepth) return ErrorAt(column, "the filter is too long (at most 64 pending comparisons)");
    }
    ops.push_back(op);
    return absl::OkStatus();
  }

  static std::string Wrap(const Piece& piece, int min_precedence) {
    return piece.precedence < min_precedence ? "(" + piece.text + ")" : piece.text;
  }

  absl::StatusOr<Piece> ParseOr(int nesting) {
    absl::StatusOr<Piece> left = ParseAnd(nesting);
    if (!left.ok()) return left;
    while (PeekKeyword("or")) {
      const int column = Next().column;
      absl::StatusOr<Piece> right = ParseAnd(nesting);
      if (!right.ok()) return right;
      Op op;
      op.kind = Op::Kind::kOr;
      if (absl::Status s = Emit(op, column); !s.ok()) return s;
      // Left-associative: a right operand of equal precedence came from
      // explicit parentheses and keeps them.
      left = Piece{Wrap(*left, 1) + " or " + Wrap(*right, 2), 1};
    }
    return left;
  }

  absl::StatusOr<Piece> ParseAnd(int nesting) {
    absl::StatusOr<Piece> left = ParseUnary(nesting);
    if (!left.ok()) return left;
    while (PeekKeyword("and")) {
      const int column = Next().column;
      absl::StatusOr<Piece> right = ParseUnary(nesting);
      if (!right.ok()) return right;
      Op op;
      op.kind = Op::Kind::kAnd;
      if (absl::Status s = Emit(op, column); !s.ok()) return s;
      left = Piece{Wrap(*left, 2) + " and " + Wrap(*right, 3), 2};
    }
    return left;
  }

  absl::StatusOr<Piece> ParseUnary(int nesting) {
    if (nesting > kMaxNesting) return ErrorAt(Peek().column, "the filter nests too deeply");
    if (PeekKeyword("not")) {
      Next();
      absl::StatusOr<Piece> inner = ParseUnary(nesting + 1);
      if (!inner.ok()) return inner;
      Op op;
      op.kind = Op::Kind::kNot;
      if (absl::Status s = Emit(op, 0); !s.ok()) return s;
      return Piece{"not " + Wrap(*inner, 3), 3};
    }
    if (Peek().kind == TokenKind::kLParen) {
      const int open_column = Next().column;
      absl::StatusOr<Piece> inner = ParseOr(nesting + 1);
      if (!inner.ok()) return inner;
      if (Peek().kind != TokenKind::kRParen) {
        return ErrorAt(Peek().column, "expected ')' to close the '(' at column " + std::to_string(open_column) +
                                          ", got " + Describe(Peek()));
      }
      Next();
      return inner;
    }
    return ParseCompare();
  }

  absl::StatusOr<Literal> ParseLiteral(std::string_view after) {
    const Token& token = Next();
    Literal literal;
    literal.column = token.column;
    switch (token.kind) {
      case TokenKind::kString:
        literal.kind = Literal::Kind::kText;
        literal.text = std::string(token.text);
        return literal;
      case TokenKind::kNumber: {
        const std::string_view text = token.text[0] == '+' ? token.text.substr(1) : token.text;
        const bool fractional = text.find_first_of(".eE") != std::string_view::npos;
        if (!fractional) {
          const auto result = std::from_chars(text.data(), text.data() + text.size(), literal.integer);
          if (result.ec != std::errc() || result.ptr != text.data() + text.size()) {
            return ErrorAt(token.column, "'" + std::string(token.text) + "' is not a 64-bit integer");
          }
          literal.kind = Literal::Kind::kInteger;
          literal.number = static_cast<double>(literal.integer);
          return literal;
        }
        const auto result = std::from_chars(text.data(), text.data() + text.size(), literal.number);
        if (result.ec != std::errc() || result.ptr != text.data() + text.size() || !std::isfinite(literal.number)) {
          return ErrorAt(token.column, "'" + std::string(token.text) + "' is not a number");
        }
        literal.kind = Literal::Kind::kFractional;
        return literal;
      }
      case TokenKind::kIdent:
        if (EqualsIgnoreCase(token.text, "true") || EqualsIgnoreCase(token.text, "false")) {
          literal.kind = Literal::Kind::kBoolean;
          literal.integer = EqualsIgnoreCase(token.text, "true") ? 1 : 0;
          return literal;
        }
        return ErrorAt(token.column, "expected a value after " + std::string(after) + ", got " + Describe(token) +
                                         " (text goes in quotes: '" + std::string(token.text) + "')");
      default:
        return ErrorAt(token.column, "expected a value after " + std::string(after) + " (text in quotes, a number, "
                                     "true or false), got " + Describe(token));
    }
  }

  // Checks `literal` against the field's type; sets how the op compares.
  absl::Status CheckLiteral(const InputField& field, const Literal& literal) {
    const auto mismatch = [&](std::string_view want) {
      std::string got = literal.kind == Literal::Kind::kText      ? "text " + QuoteText(literal.text)
                        : literal.kind == Literal::Kind::kBoolean ? std::string(literal.integer ? "true" : "false")
                                                                  : "a number";
      return ErrorAt(literal.column, "field '" + field.name + "' is " + std::string(FieldTypeName(field.type)) +
                                         "; compare it with " + std::string(want) + ", not " + got);
    };
    switch (field.type) {
      case FieldType::kString:
        if (literal.kind != Literal::Kind::kText) return mismatch("text in quotes");
        break;
      case FieldType::kLong:
      case FieldType::kDouble:
        if (literal.kind != Literal::Kind::kInteger && literal.kind != Literal::Kind::kFractional) {
          return mismatch("a number");
        }
        break;
      case FieldType::kBoolean:
        if (literal.kind != Literal::Kind::kBoolean) return mismatch("true or false");
        break;
    }
    return absl::OkStatus();
  }

  // A fractional literal that is a whole number compares exactly with a
  // long field (1.0 == 1), so it is stored as an integer.
  static bool AsExactInteger(const Literal& literal, int64_t* out) {
    if (literal.kind == Literal::Kind::kInteger) {
      *out = literal.integer;
      return true;
    }
    // 2^63 is exactly representable; anything >= it does not fit.
    if (literal.number == std::floor(literal.number) && literal.number >= -9223372036854775808.0 &&
        literal.number < 9223372036854775808.0) {
      *out = static_cast<int64_t>(literal.number);
      return true;
    }
    return false;
  }

  std::string CanonicalLiteral(const InputField& field, const Literal& literal) {
    switch (field.type) {
      case FieldType::kString:
        return QuoteText(literal.text);
      case FieldType::kBoolean:
        return literal.integer ? "true" : "false";
      case FieldType::kLong: {
        int64_t exact = 0;
        if (AsExactInteger(literal, &exact)) return std::to_string(exact);
        return FormatDouble(literal.number);
      }
      case FieldType::kDouble:
        return FormatDouble(literal.number);
    }
    return literal.text;
  }

  absl::StatusOr<Piece> ParseCompare() {
    const Token& name = Next();
    if (name.kind != TokenKind::kIdent || IsKeyword(name.text)) {
      return ErrorAt(name.column, "expected a field name, '(' or 'not', got " + Describe(name));
    }
    const int field_index = schema_.FieldIndex(name.text);
    if (field_index < 0) {
      std::vector<std::string> names;
      for (const InputField& f : schema_.fields) names.push_back(f.name);
      const std::string nearest = NearestName(name.text, names);
      std::string what = "unknown field '" + std::string(name.text) + "'";
      if (!nearest.empty()) {
        what += "; did you mean '" + nearest + "'?";
      } else {
        what += " (the input fields are:";
        for (size_t i = 0; i < names.size(); ++i) what += (i ? ", " : " ") + names[i];
        what += ")";
      }
      return ErrorAt(name.column, what);
    }
    const InputField& field = schema_.fields[static_cast<size_t>(field_index)];
    Op op;
    op.field = field_index;
    op.type = field.type;
    op.as_double = field.type == FieldType::kDouble;

    // `field in (...)` / `field not in (...)`
    const bool not_in = PeekKeyword("not") && PeekKeyword("in", 1);
    if (not_in || PeekKeyword("in")) {
      Next();
      if (not_in) Next();
      return ParseInList(name, field, not_in, op);
    }
    return ParseComparison(name, field, op);
  }

  // The list of `field in (...)` / `field not in (...)`, after the keywords.
  absl::StatusOr<Piece> ParseInList(const Token& name, const InputField& field, bool not_in, Op op) {
    const std::string keyword = not_in ? "not in" : "in";
    if (Peek().kind != TokenKind::kLParen) {
      return ErrorAt(Peek().column, "expected '(' after '" + keyword + "', got " + Describe(Peek()));
    }
    Next();
    std::vector<Literal> literals;
    while (true) {
      absl::StatusOr<Literal> literal = ParseLiteral("'" + keyword + " ('");
      if (!literal.ok()) return literal.status();
      if (absl::Status s = CheckLiteral(field, *literal); !s.ok()) return s;
      literals.push_back(std::move(*literal));
      if (Peek().kind == TokenKind::kComma) {
        Next();
        continue;
      }
      if (Peek().kind == TokenKind::kRParen) {
        Next();
        break;
      }
      return ErrorAt(Peek().column, "expected ',' or ')' in the '" + keyword + "' list, got " + Describe(Peek()));
    }
    op.kind = Op::Kind::kIn;
    op.negate = not_in;
    std::string list;
    for (const Literal& literal : literals) list += (list.empty() ? "" : ", ") + CanonicalLiteral(field, literal);
    if (field.type == FieldType::kString) {
      op.begin = static_cast<uint32_t>(strings.size());
      for (Literal& literal : literals) strings.push_back(std::move(literal.text));
    } else if (field.type == FieldType::kBoolean) {
      op.begin = static_cast<uint32_t>(longs.size());
      for (const Literal& literal : literals) longs.push_back(literal.integer);
    } else {
      bool exact = field.type == FieldType::kLong;
      int64_t unused = 0;
      for (const Literal& literal : literals) exact = exact && AsExactInteger(literal, &unused);
      op.as_double = !exact;
      if (exact) {
        op.begin = static_cast<uint32_t>(longs.size());
        for (const Literal& literal : literals) {
          int64_t value = 0;
          AsExactInteger(literal, &value);
          longs.push_back(value);
        }
      } else {
        op.begin = static_cast<uint32_t>(doubles.size());
        for (const Literal& literal : literals) doubles.push_back(literal.number);
      }
    }
    op.count = static_cast<uint32_t>(literals.size());
    if (absl::Status s = Emit(op, name.column); !s.ok()) return s;
    return Piece{field.name + " " + keyword + " (" + list + ")", 3};
  }

  // `field op literal`, or a bare boolean field.
  absl::StatusOr<Piece> ParseComparison(const Token& name, const InputField& field, Op op) {
    if (Peek().kind != TokenKind::kOp) {
      if (field.type != FieldType::kBoolean) {
        return ErrorAt(name.column, "field '" + field.name + "' is " + std::string(FieldTypeName(field.type)) +
                                        ": compare it (e.g. " + field.name + " == ...); only a boolean field stands "
                                        "alone");
      }
      op.kind = Op::Kind::kTruthy;
      if (absl::Status s = Emit(op, name.column); !s.ok()) return s;
      return Piece{field.name, 3};
    }
    const Token& op_token = Next();
    const std::string_view o = op_token.text;
    std::string canonical_op;
    if (o == "==" || o == "=") {
      op.cmp = Op::Cmp::kEq, canonical_op = "==";
    } else if (o == "!=" || o == "<>") {
      op.cmp = Op::Cmp::kNe, canonical_op = "!=";
    } else if (o == "<") {
      op.cmp = Op::Cmp::kLt, canonical_op = "<";
    } else if (o == "<=") {
      op.cmp = Op::Cmp::kLe, canonical_op = "<=";
    } else if (o == ">") {
      op.cmp = Op::Cmp::kGt, canonical_op = ">";
    } else {
      op.cmp = Op::Cmp::kGe, canonical_op = ">=";
    }
    if (field.type == FieldType::kBoolean && op.cmp != Op::Cmp::kEq && op.cmp != Op::Cmp::kNe) {
      return ErrorAt(op_token.column, "field '" + field.name + "' is boolean: only ==, != and in apply");
    }
    absl::StatusOr<Literal> literal = ParseLiteral("'" + std::string(o) + "'");
    if (!literal.ok()) return literal.status();
    if (absl::Status s = CheckLiteral(field, *literal); !s.ok()) return s;
    op.kind = Op::Kind::kCompare;
    switch (field.type) {
      case FieldType::kString:
        op.begin = static_cast<uint32_t>(strings.size());
        strings.push_back(literal->text);
        break;
      case FieldType::kBoolean:
        op.long_value = literal->integer;
        break;
      case FieldType::kLong:
        op.as_double = !AsExactInteger(*literal, &op.long_value);
        op.double_value = literal->number;
        break;
      case FieldType::kDouble:
        op.double_value = literal->number;
        break;
    }
    if (absl::Status s = Emit(op, name.column); !s.ok()) return s;
    return Piece{field.name + " " + canonical_op + " " + CanonicalLiteral(field, *literal), 3};
  }

  std::vector<Token> tokens_;
  const InputSchema& schema_;
  size_t pos_ = 0;
  int depth_ = 0;
};

enum Truth : uint8_t { kFalse = 0, kTrue = 1, kUnknown = 2 };

template <typename T>
Truth CompareValues(CompiledFilter::Op::Cmp cmp, const T& a, const T& b) {
  using Cmp = CompiledFilter::Op::Cmp;
  bool result = false;
  switch (cmp) {
    case Cmp::kEq: result = a == b; break;
    case Cmp::kNe: result = a != b; break;
    case Cmp::kLt: result = a < b; break;
    case Cmp::kLe: result = a <= b; break;
    case Cmp::kGt: result = a > b; break;
    case Cmp::kGe: result = a >= b; break;
  }
  return result ? kTrue : kFalse;
}

double AsDouble(const FieldValue& value, FieldType type) {
  return type == FieldType::kDouble ? value.double_value : static_cast<double>(value.long_value);
}

}  // namespace

absl::StatusOr<CompiledFilter> ParseFilter(std::string_view text, const InputSchema& schema) {
  absl::StatusOr<std::vector<Token>> tokens = Tokenize(text);
  if (!tokens.ok()) return tokens.status();
  Parser parser(std::move(*tokens), schema);
  absl::StatusOr<Piece> piece = parser.ParseAll();
  if (!piece.ok()) return piece.status();
  CompiledFilter filter;
  filter.ops_ = std::move(parser.ops);
  filter.strings_ = std::move(parser.strings);
  filter.longs_ = std::move(parser.longs);
  filter.doubles_ = std::move(parser.doubles);
  filter.canonical_ = std::move(piece->text);
  return filter;
}

bool CompiledFilter::Matches(const Event& event) const {
  if (ops_.empty()) return true;
  std::array<uint8_t, kMaxStackDepth> stack;
  size_t top = 0;
  for (const Op& op : ops_) {
    switch (op.kind) {
      case Op::Kind::kAnd: {
        const uint8_t b = stack[--top];
        const uint8_t a = stack[top - 1];
        stack[top - 1] = (a == kFalse || b == kFalse) ? kFalse : (a == kTrue && b == kTrue) ? kTrue : kUnknown;
        continue;
      }
      case Op::Kind::kOr: {
        const uint8_t b = stack[--top];
        const uint8_t a = stack[top - 1];
        stack[top - 1] = (a == kTrue || b == kTrue) ? kTrue : (a == kFalse && b == kFalse) ? kFalse : kUnknown;
        continue;
      }
      case Op::Kind::kNot: {
        uint8_t& a = stack[top - 1];
        a = a == kUnknown ? kUnknown : a == kTrue ? kFalse : kTrue;
        continue;
      }
      default:
        break;
    }
    const size_t index = static_cast<size_t>(op.field);
    if (index >= event.fields.size() || !event.fields[index].present) {
      stack[top++] = kUnknown;
      continue;
    }
    const FieldValue& value = event.fields[index];
    Truth truth = kFalse;
    if (op.kind == Op::Kind::kTruthy) {
      truth = value.long_value != 0 ? kTrue : kFalse;
    } else if (op.kind == Op::Kind::kCompare) {
      if (op.type == FieldType::kString) {
        truth = CompareValues(op.cmp, std::string_view(value.string_value), std::string_view(strings_[op.begin]));
      } else if (op.as_double) {
        truth = CompareValues(op.cmp, AsDouble(value, op.type), op.double_value);
      } else {
        truth = CompareValues(op.cmp, value.long_value, op.long_value);
      }
    } else {  // kIn
      bool found = false;
      for (uint32_t i = op.begin; i < op.begin + op.count && !found; ++i) {
        if (op.type == FieldType::kString) {
          found = value.string_value == strings_[i];
        } else if (op.as_double) {
          found = AsDouble(value, op.type) == doubles_[i];
        } else {
          found = value.long_value == longs_[i];
        }
      }
      truth = found != op.negate ? kTrue : kFalse;
    }
    stack[top++] = truth;
  }
  return stack[0] == kTrue;
}

}  // namespace slipstream
