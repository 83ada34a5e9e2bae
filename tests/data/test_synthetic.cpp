// test_synthetic.cpp — tests of the embedded synthetic corpus (src/data/synthetic.*, SPEC §5).
//
// What is checked: determinism by seed and random access by index, the document/line layout the
// tokenizer relies on, that every domain appears and looks like itself, and that the content a
// model could learn is true: equations add up, printed results match the code, and facts about
// the invented world never contradict each other, within a corpus or across seeds.
// Not checked: any measure of text quality.
#include <gtest/gtest.h>

#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/check.h"
#include "data/synthetic.h"

namespace moe {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

TEST(Synthetic, SameSeedGivesSameTextDifferentSeedDiffers) {
  const std::string a = synthetic_corpus(7, 50000);
  const std::string b = synthetic_corpus(7, 50000);
  const std::string c = synthetic_corpus(8, 50000);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  // Random access: asking for documents backwards gives the same documents as forwards.
  std::vector<std::string> forward;
  for (uint64_t i = 0; i < 20; ++i) forward.push_back(synthetic_document(7, i).text);
  for (uint64_t i = 20; i-- > 0;) EXPECT_EQ(synthetic_document(7, i).text, forward[i]) << i;
  // Neighbouring documents are not copies of each other.
  EXPECT_NE(forward[0], forward[1]);
}

TEST(Synthetic, CorpusIsDocumentsJoinedByEmptyLines) {
  const size_t target = 30000;
  const std::string corpus = synthetic_corpus(3, target);
  EXPECT_GE(corpus.size(), target);
  EXPECT_LT(corpus.size(), target + 2000);  // stops right after the document that crosses it
  std::string rebuilt;
  for (uint64_t i = 0; rebuilt.size() < corpus.size(); ++i) {
    const SyntheticDoc d = synthetic_document(3, i);
    ASSERT_FALSE(d.text.empty());
    ASSERT_EQ(d.text.back(), '\n') << "document " << i << " must end its last line";
    ASSERT_EQ(d.text.find("\n\n"), std::string::npos) << "empty line inside document " << i;
    rebuilt += d.text + "\n";
  }
  EXPECT_EQ(rebuilt, corpus);
  for (char ch : corpus) {
    ASSERT_TRUE(ch == '\n' || (ch >= 32 && ch < 127)) << "non-printable byte " << int(ch);
  }
}

TEST(Synthetic, EveryDomainAppearsAndLooksLikeItself) {
  ASSERT_EQ(synthetic_num_domains(), 5);
  EXPECT_STREQ(synthetic_domain_name(SYNTHETIC_ARITHMETIC), "arithmetic");
  EXPECT_THROW(synthetic_domain_name(5), Error);
  EXPECT_THROW(synthetic_domain_name(-1), Error);
  std::vector<int> count(5, 0);
  const int n = 1000;
  for (int i = 0; i < n; ++i) {
    const SyntheticDoc d = synthetic_document(11, i);
    ASSERT_GE(d.domain, 0);
    ASSERT_LT(d.domain, 5);
    ++count[d.domain];
    const std::string& t = d.text;
    switch (d.domain) {
      case SYNTHETIC_STORY: EXPECT_NE(t.find(" found "), std::string::npos) << t; break;
      case SYNTHETIC_ARITHMETIC: EXPECT_NE(t.find(" = "), std::string::npos) << t; break;
      case SYNTHETIC_LIST:
        EXPECT_TRUE(t.find("\n- ") != std::string::npos || t.find("\n1. ") != std::string::npos)
            << t;
        break;
      case SYNTHETIC_FACTS:
        EXPECT_TRUE(t.rfind("Country: ", 0) == 0 || t.rfind("Person: ", 0) == 0 ||
                    t.rfind("Q: ", 0) == 0) << t;
        break;
      default:
        EXPECT_TRUE(t.find("def ") != std::string::npos || t.find("print(") != std::string::npos)
            << t;
    }
  }
  // Uniform choice: 200 expected per domain, standard deviation about 13.
  for (int d = 0; d < 5; ++d) EXPECT_GT(count[d], 120) << synthetic_domain_name(d);
}

// Parses "a op b = c" (op in + - * x /) and checks it; returns false for other lines.
bool check_equation(const std::string& line, long long* result) {
  static const std::regex eq(R"(^(\d+) ([-+*x/]) (\d+) = (\d+)$)");
  std::smatch m;
  if (!std::regex_match(line, m, eq)) return false;
  const long long a = std::stoll(m[1]), b = std::stoll(m[3]), c = std::stoll(m[4]);
  const char op = m[2].str()[0];
  long long want = 0;
  if (op == '+') want = a + b;
  if (op == '-') want = a - b;
  if (op == '*' || op == 'x') want = a * b;
  if (op == '/') {
    EXPECT_EQ(a % b, 0) << "inexact division: " << line;
    want = a / b;
  }
  EXPECT_EQ(c, want) << "wrong equation: " << line;
  *result = c;
  return true;
}

TEST(Synthetic, ArithmeticIsCorrect) {
  int equations = 0, answers = 0;
  for (uint64_t i = 0; i < 3000; ++i) {
    const SyntheticDoc d = synthetic_document(5, i);
    if (d.domain != SYNTHETIC_ARITHMETIC) continue;
    long long last = -1;
    bool has_equation = false;
    for (const std::string& line : lines_of(d.text)) {
      if (check_equation(line, &last)) {
        ++equations;
        has_equation = true;
      } else if (line.rfind("Answer: ", 0) == 0) {
        ASSERT_TRUE(has_equation) << d.text;
        EXPECT_EQ(std::stoll(line.substr(8)), last) << d.text;  // the answer is the equation's
        ++answers;
      }
    }
    EXPECT_TRUE(has_equation) << d.text;
  }
  EXPECT_GT(equations, 1000);
  EXPECT_GT(answers, 50);
}

// Runs the two straight-line forms of the code domain and checks the "# result" comments:
//   v = N / v = w * N / v = 0 + "for i in range(N):" + "    v += i" / "print(v)  # R"
TEST(Synthetic, CodeCommentsStateWhatIsPrinted) {
  static const std::regex assign_const(R"(^(\w+) = (\d+)$)");
  static const std::regex assign_mul(R"(^(\w+) = (\w+) \* (\d+)$)");
  static const std::regex loop(R"(^for i in range\((\d+)\):$)");
  static const std::regex print(R"(^print\((\w+)\)  # (-?\d+)$)");
  int checked = 0;
  for (uint64_t i = 0; i < 2000; ++i) {
    const SyntheticDoc d = synthetic_document(9, i);
    if (d.domain != SYNTHETIC_CODE) continue;
    std::map<std::string, long long> vars;
    long long loop_n = -1;
    for (const std::string& line : lines_of(d.text)) {
      std::smatch m;
      if (std::regex_match(line, m, assign_const)) {
        vars[m[1]] = std::stoll(m[2]);
      } else if (std::regex_match(line, m, assign_mul)) {
        ASSERT_TRUE(vars.count(m[2])) << d.text;
        vars[m[1]] = vars[m[2]] * std::stoll(m[3]);
      } else if (std::regex_match(line, m, loop)) {
        loop_n = std::stoll(m[1]);
      } else if (loop_n >= 0 && line.size() > 4 && line.find(" += i") != std::string::npos) {
        const std::string v = line.substr(4, line.find(' ', 4) - 4);
        for (long long k = 0; k < loop_n; ++k) vars[v] += k;
      } else if (std::regex_match(line, m, print)) {
        ASSERT_TRUE(vars.count(m[1])) << d.text;
        EXPECT_EQ(vars[m[1]], std::stoll(m[2])) << d.text;
        ++checked;
      }
    }
  }
  EXPECT_GT(checked, 100);
}

// Collects every statement of "X -> value" for one relation and fails on a contradiction.
struct Relation {
  std::map<std::string, std::string> value;
  void add(const std::string& key, const std::string& v, const std::string& where) {
    auto it = value.find(key);
    if (it == value.end()) value[key] = v;
    else EXPECT_EQ(it->second, v) << "contradiction about " << key << " in:\n" << where;
  }
};

void collect_facts(uint64_t seed, Relation& capital, Relation& good, Relation& home) {
  static const std::regex cap1(R"(^The capital of (\w+) is (\w+)\.$)");
  static const std::regex cap2(R"(^(\w+) is the capital of (\w+)\.$)");
  static const std::regex famous(R"(^(\w+) is famous for its (\w+)\.$)");
  static const std::regex lives(R"(^(\w+ \w+) is an? \w+ who lives in (\w+)\.$)");
  static const std::regex q_cap(R"(^Q: What is the capital of (\w+)\?$)");
  static const std::regex q_good(R"(^Q: What is (\w+) famous for\?$)");
  static const std::regex answer(R"(^A: (?:Its )?(\w+)\.$)");
  for (uint64_t i = 0; i < 3000; ++i) {
    const SyntheticDoc d = synthetic_document(seed, i);
    if (d.domain != SYNTHETIC_FACTS) continue;
    const std::vector<std::string> lines = lines_of(d.text);
    for (size_t k = 0; k < lines.size(); ++k) {
      std::smatch m, a;
      const std::string next = k + 1 < lines.size() ? lines[k + 1] : "";
      if (std::regex_match(lines[k], m, cap1)) capital.add(m[1], m[2], d.text);
      if (std::regex_match(lines[k], m, cap2)) capital.add(m[2], m[1], d.text);
      if (std::regex_match(lines[k], m, famous)) good.add(m[1], m[2], d.text);
      if (std::regex_match(lines[k], m, lives)) home.add(m[1], m[2], d.text);
      if (std::regex_match(lines[k], m, q_cap) && std::regex_match(next, a, answer))
        capital.add(m[1], a[1], d.text);
      if (std::regex_match(lines[k], m, q_good) && std::regex_match(next, a, answer))
        good.add(m[1], a[1], d.text);
    }
  }
}

TEST(Synthetic, FactsAreConsistentAcrossDocumentsAndSeeds) {
  Relation capital, good, home;
  collect_facts(1, capital, good, home);
  collect_facts(2, capital, good, home);  // a different corpus states the same world
  EXPECT_EQ(capital.value.size(), 16u);   // the world has 16 countries, all mentioned
  EXPECT_EQ(good.value.size(), 16u);
  EXPECT_GT(home.value.size(), 20u);
  // No two countries share a capital.
  std::set<std::string> capitals;
  for (const auto& kv : capital.value) capitals.insert(kv.second);
  EXPECT_EQ(capitals.size(), capital.value.size());
}

}  // namespace
}  // namespace moe
