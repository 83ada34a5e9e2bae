// synthetic.cpp — generators for the five synthetic domains of the default corpus (SPEC §5).
//
// Each domain is a handful of document templates filled from small word lists with a SplitMix64
// stream seeded by (seed, document index). Values that a model could check are correct: every
// equation adds up, every program's `# result` comment is what the program prints, and every fact
// about the invented world is the same in every document (the world comes from a fixed seed).
//
// Left out: weighting of domains (each document picks one uniformly), Unicode, blank lines inside
// a document (an empty line is the document separator, so code snippets have none).
#include "data/synthetic.h"

#include <algorithm>
#include <set>
#include <utility>
#include <vector>

#include "core/check.h"

namespace moe {
namespace {

// ---------------------------------------------------------------------------------------------
// Small helpers

template <size_t N>
const char* pick(SplitMix64& rng, const char* const (&words)[N]) {
  return words[rng.below(static_cast<uint32_t>(N))];
}

// Append any mix of strings, C strings and chars.
template <typename... Parts>
void put(std::string& out, const Parts&... parts) {
  ((out += parts), ...);
}

std::string num(long long v) { return std::to_string(v); }

// "a red key" / "an old mill": the article agrees with the first letter of the next word.
const char* article(const std::string& next_word) {
  const char c = next_word.empty() ? 'x' : next_word[0];
  const bool vowel = c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u';
  return vowel ? "an" : "a";
}

std::string capitalized(std::string s) {
  if (!s.empty() && s[0] >= 'a' && s[0] <= 'z') s[0] = static_cast<char>(s[0] - 'a' + 'A');
  return s;
}

// Shared vocabulary: people appear in stories, word problems and to-do lists alike.
const char* const kFemale[] = {"Mira", "Ana", "Lena", "Sofia", "Nora", "Ida", "Tess", "Rosa",
                               "Elsa", "Maya"};
const char* const kMale[] = {"Tom", "Ben", "Omar", "Leo", "Sam", "Ivan", "Hugo", "Paul",
                             "Felix", "Jonas"};

struct Person {
  const char* name;
  bool female;
  const char* subject() const { return female ? "she" : "he"; }
  const char* object() const { return female ? "her" : "him"; }
  const char* possessive() const { return female ? "her" : "his"; }
};

Person random_person(SplitMix64& rng) {
  const bool female = rng.below(2) == 0;
  return Person{female ? pick(rng, kFemale) : pick(rng, kMale), female};
}

// A second character, never the same name as the first.
Person other_person(SplitMix64& rng, const Person& first) {
  for (;;) {
    Person p = random_person(rng);
    if (std::string(p.name) != first.name) return p;
  }
}

// ---------------------------------------------------------------------------------------------
// Domain 0: stories

const char* const kPlaces[] = {"mill", "forest", "market", "river", "library", "harbor",
                               "garden", "castle", "bakery", "bridge", "school", "farm"};
const char* const kPlaceAdj[] = {"old", "quiet", "busy", "dark", "small", "sunny", "empty",
                                 "windy"};
const char* const kObjects[] = {"key", "box", "map", "coin", "lamp", "letter", "book", "ring",
                                "feather", "stone", "bell", "shell"};
const char* const kColors[] = {"red", "blue", "green", "golden", "silver", "orange", "white",
                               "black", "yellow"};
const char* const kWhere[] = {"under a tree", "behind the door", "in the grass", "on a shelf",
                              "near the water", "inside a basket", "under the bench"};
const char* const kOpenings[] = {"One morning", "In the evening", "On a rainy day",
                                 "Early in the spring", "After lunch", "Late at night"};
const char* const kDoing[] = {"reading a book", "waiting by the gate", "feeding the birds",
                              "fixing a chair", "painting a fence", "drinking tea"};
const char* const kFeelings[] = {"happy", "surprised", "curious", "tired", "proud", "calm"};

std::string story_document(SplitMix64& rng) {
  const Person hero = random_person(rng);
  const Person friend_ = other_person(rng, hero);
  const std::string adj = pick(rng, kPlaceAdj);
  const std::string place = pick(rng, kPlaces);
  const std::string color = pick(rng, kColors);
  const std::string object = pick(rng, kObjects);
  std::string out;
  if (rng.below(2) == 0) {
    put(out, pick(rng, kOpenings), ", ", hero.name, " walked to the ", adj, " ", place, ".\n");
  } else {
    put(out, hero.name, " lived near ", article(adj), " ", adj, " ", place, ".\n");
  }
  put(out, capitalized(hero.subject()), " found ", article(color), " ", color, " ", object, " ",
      pick(rng, kWhere), ".\n");
  if (rng.below(2) == 0) {
    put(out, capitalized(hero.subject()), " did not know who owned the ", object, ".\n");
  }
  put(out, friend_.name, " was ", pick(rng, kDoing), " at the ", pick(rng, kPlaces), ".\n");
  put(out, hero.name, " showed the ", object, " to ", friend_.name, ", and ", friend_.subject(),
      " was ", pick(rng, kFeelings), ".\n");
  if (rng.below(2) == 0) {
    put(out, capitalized(friend_.subject()), " said it belonged to ", friend_.possessive(),
        " grandmother.\n");
    put(out, capitalized(friend_.subject()), " thanked ", hero.object(), " with a smile.\n");
  } else {
    put(out, "They kept the ", object, " in ", hero.possessive(), " room.\n");
  }
  put(out, hero.name, " and ", friend_.name, " went home ", pick(rng, kFeelings), ".\n");
  return out;
}

// ---------------------------------------------------------------------------------------------
// Domain 1: arithmetic. Equations are written "a op b = c" with op in + - * / (and "x" in
// multiplication tables); the test suite parses and checks every one of them.

std::string random_equation(SplitMix64& rng) {
  std::string out;
  switch (rng.below(4)) {
    case 0: {
      const int a = rng.range(0, 99), b = rng.range(0, 99);
      put(out, num(a), " + ", num(b), " = ", num(a + b));
      break;
    }
    case 1: {
      const int a = rng.range(0, 99), b = rng.range(0, a);
      put(out, num(a), " - ", num(b), " = ", num(a - b));
      break;
    }
    case 2: {
      const int a = rng.range(2, 12), b = rng.range(2, 12);
      put(out, num(a), " * ", num(b), " = ", num(a * b));
      break;
    }
    default: {  // built from the quotient so that the division is exact
      const int b = rng.range(2, 12), q = rng.range(1, 12);
      put(out, num(b * q), " / ", num(b), " = ", num(q));
      break;
    }
  }
  return out;
}

const char* const kCountables[] = {"apples", "marbles", "books", "pencils", "cookies", "stamps",
                                   "shells", "cards"};

std::string word_problem(SplitMix64& rng) {
  const Person p = random_person(rng);
  const std::string item = pick(rng, kCountables);
  std::string out;
  long long answer = 0;
  switch (rng.below(3)) {
    case 0: {
      const int a = rng.range(2, 40), b = rng.range(1, 30);
      answer = a + b;
      put(out, p.name, " has ", num(a), " ", item, ". ", capitalized(p.subject()), " gets ",
          num(b), " more.\n", num(a), " + ", num(b), " = ", num(answer), "\n");
      break;
    }
    case 1: {
      const int a = rng.range(5, 60), b = rng.range(1, a);
      answer = a - b;
      put(out, p.name, " has ", num(a), " ", item, ". ", capitalized(p.subject()), " gives away ",
          num(b), ".\n", num(a), " - ", num(b), " = ", num(answer), "\n");
      break;
    }
    default: {
      const int a = rng.range(2, 9), b = rng.range(2, 12);
      answer = static_cast<long long>(a) * b;
      put(out, p.name, " buys ", num(a), " bags with ", num(b), " ", item, " in each.\n", num(a),
          " * ", num(b), " = ", num(answer), "\n");
      break;
    }
  }
  put(out, "How many ", item, " does ", p.name, " have now?\n");
  put(out, "Answer: ", num(answer), " ", item, ".\n");
  return out;
}

std::string arithmetic_document(SplitMix64& rng) {
  std::string out;
  const uint32_t kind = rng.below(3);
  if (kind == 0) {
    const int n = rng.range(3, 7);
    for (int i = 0; i < n; ++i) put(out, random_equation(rng), "\n");
  } else if (kind == 1) {
    const int base = rng.range(2, 12), rows = rng.range(5, 10);
    put(out, "Multiplication table of ", num(base), ":\n");
    for (int k = 1; k <= rows; ++k) put(out, num(base), " x ", num(k), " = ", num(base * k), "\n");
  } else {
    out = word_problem(rng);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Domain 2: lists

const char* const kGroceries[] = {"apples", "bread", "milk", "eggs", "rice", "butter", "cheese",
                                  "tomatoes", "onions", "coffee", "tea", "flour", "sugar",
                                  "carrots", "lemons", "soap"};
const char* const kChores[] = {"clean the kitchen", "water the plants", "pay the rent",
                               "fix the bike", "return the library books", "wash the car",
                               "buy stamps", "sort the mail", "walk the dog", "cook dinner"};
const char* const kDays[] = {"Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday",
                             "Sunday"};

struct HowTo {
  const char* task;
  std::vector<const char*> steps;  // in the order they must be done
};

const std::vector<HowTo>& how_tos() {
  static const std::vector<HowTo> k = {
      {"make tea", {"Boil the water.", "Put the tea in a cup.", "Pour the water over the tea.",
                    "Wait three minutes.", "Remove the tea and drink."}},
      {"plant a seed", {"Fill a pot with soil.", "Make a small hole.", "Drop the seed in the hole.",
                        "Cover it with soil.", "Water it every day."}},
      {"write a letter", {"Take a clean sheet of paper.", "Write the date at the top.",
                          "Greet the reader.", "Write your message.", "Sign your name.",
                          "Put it in an envelope."}},
      {"bake bread", {"Mix flour, water and yeast.", "Knead the dough.", "Let it rise for an hour.",
                      "Shape the loaf.", "Bake it until golden."}},
      {"wash a bike", {"Rinse the frame with water.", "Scrub the chain.", "Wash the wheels.",
                       "Dry everything with a cloth.", "Oil the chain."}},
  };
  return k;
}

// Up to `n` distinct entries of `words`, in random order (partial Fisher-Yates on indices).
template <size_t N>
std::vector<const char*> distinct(SplitMix64& rng, const char* const (&words)[N], int n) {
  std::vector<const char*> v(words, words + N);
  const size_t take = std::min(static_cast<size_t>(n), N);
  for (size_t i = 0; i < take; ++i) {
    const size_t j = i + rng.below(static_cast<uint32_t>(N - i));
    std::swap(v[i], v[j]);
  }
  v.resize(take);
  return v;
}

std::string list_document(SplitMix64& rng) {
  std::string out;
  switch (rng.below(3)) {
    case 0: {
      if (rng.below(2) == 0) put(out, "Shopping list:\n");
      else put(out, "Things to buy for ", random_person(rng).name, ":\n");
      for (const char* item : distinct(rng, kGroceries, rng.range(3, 7))) {
        put(out, "- ", item, "\n");
      }
      break;
    }
    case 1: {
      put(out, "To do on ", pick(rng, kDays), ":\n");
      for (const char* chore : distinct(rng, kChores, rng.range(2, 5))) {
        put(out, "- ", chore, "\n");
      }
      if (rng.below(2) == 0) put(out, "- call ", random_person(rng).name, "\n");
      break;
    }
    default: {
      const HowTo& h = how_tos()[rng.below(static_cast<uint32_t>(how_tos().size()))];
      put(out, "How to ", h.task, ":\n");
      for (size_t i = 0; i < h.steps.size(); ++i) put(out, num(i + 1), ". ", h.steps[i], "\n");
      break;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Domain 3: facts about a fixed invented world

const char* const kSyllables[] = {"ma", "ve", "lo", "ri", "tan", "dor", "sel", "ka", "mir", "nos",
                                  "ta", "bel", "gar", "lu", "fen", "or", "es", "vin", "sa", "ku",
                                  "bra", "del", "on", "zel", "pi", "mar", "ther", "qua"};
const char* const kCountryEndings[] = {"ia", "land", "ovia", "ar", "enne", "ica", "esh", "ora"};
const char* const kGoods[] = {"copper", "wool", "salt", "tea", "glass", "timber", "silk", "cheese",
                              "olives", "iron", "honey", "paper"};
const char* const kAnimals[] = {"fox", "heron", "bear", "owl", "lynx", "otter", "stag", "eagle",
                                "wolf", "crane"};
const char* const kProfessions[] = {"baker", "sailor", "painter", "doctor", "teacher", "miner",
                                    "weaver", "judge", "farmer", "poet"};
const char* const kSurnames[] = {"Brell", "Castor", "Dunmore", "Ferro", "Halden", "Ivers", "Kestel",
                                 "Lorne", "Morrow", "Pell", "Quist", "Redway", "Stroud", "Vance"};

struct Country {
  std::string name, capital, good, animal, flag1, flag2;
  int population_millions = 0, founded = 0;
  int neighbor_a = 0, neighbor_b = 0;  // indices of the two neighbours on a ring of countries
};
struct Citizen {
  std::string name, profession;
  int country = 0, born = 0;
};
struct World {
  std::vector<Country> countries;
  std::vector<Citizen> citizens;
};

// A made-up word of `syllables` syllables plus `ending`, capitalised, unique within `used`.
std::string invented_name(SplitMix64& rng, int syllables, const char* ending,
                          std::set<std::string>& used) {
  for (;;) {
    std::string s;
    for (int i = 0; i < syllables; ++i) s += pick(rng, kSyllables);
    s = capitalized(s + ending);
    if (used.insert(s).second) return s;
  }
}

// Fixed seed: the world is the same for every corpus seed, so facts repeat across corpora.
const uint64_t kWorldSeed = 0x4D4F45574F524C44ull;  // "MOEWORLD"
const int kNumCountries = 16, kNumCitizens = 32;

World build_world() {
  SplitMix64 rng(kWorldSeed);
  World w;
  std::set<std::string> used;
  for (int i = 0; i < kNumCountries; ++i) {
    Country c;
    c.name = invented_name(rng, rng.range(1, 2), pick(rng, kCountryEndings), used);
    c.capital = invented_name(rng, 2, "", used);
    c.good = pick(rng, kGoods);
    c.animal = pick(rng, kAnimals);
    c.flag1 = pick(rng, kColors);
    do c.flag2 = pick(rng, kColors); while (c.flag2 == c.flag1);
    c.population_millions = rng.range(1, 90);
    c.founded = rng.range(900, 1900);
    c.neighbor_a = (i + kNumCountries - 1) % kNumCountries;
    c.neighbor_b = (i + 1) % kNumCountries;
    w.countries.push_back(c);
  }
  std::set<std::string> people;
  while (static_cast<int>(w.citizens.size()) < kNumCitizens) {
    Citizen p;
    p.name = std::string(rng.below(2) ? pick(rng, kFemale) : pick(rng, kMale)) + " " +
             pick(rng, kSurnames);
    if (!people.insert(p.name).second) continue;  // one person per full name
    p.profession = pick(rng, kProfessions);
    p.country = static_cast<int>(rng.below(kNumCountries));
    p.born = rng.range(1900, 2000);
    w.citizens.push_back(p);
  }
  return w;
}

const World& world() {
  static const World w = build_world();  // built once, thread-safe since C++11
  return w;
}

// One statement about country c; `which` selects the attribute (and its phrasing).
std::string country_fact(const World& w, int c, uint32_t which) {
  const Country& k = w.countries[c];
  std::string s;
  switch (which) {
    case 0: put(s, "The capital of ", k.name, " is ", k.capital, "."); break;
    case 1: put(s, k.capital, " is the capital of ", k.name, "."); break;
    case 2: put(s, k.name, " is famous for its ", k.good, "."); break;
    case 3: put(s, "The national animal of ", k.name, " is the ", k.animal, "."); break;
    case 4: put(s, "The flag of ", k.name, " is ", k.flag1, " and ", k.flag2, "."); break;
    case 5: put(s, "About ", num(k.population_millions), " million people live in ", k.name, ".");
            break;
    case 6: put(s, k.name, " was founded in ", num(k.founded), "."); break;
    default:
      put(s, k.name, " shares a border with ", w.countries[k.neighbor_a].name, " and ",
          w.countries[k.neighbor_b].name, ".");
  }
  return s;
}

std::string facts_document(SplitMix64& rng) {
  const World& w = world();
  std::string out;
  const uint32_t kind = rng.below(3);
  if (kind == 0) {  // a country profile: a few attributes in random order
    const int c = static_cast<int>(rng.below(kNumCountries));
    put(out, "Country: ", w.countries[c].name, "\n");
    uint32_t order[8] = {0, 1, 2, 3, 4, 5, 6, 7};
    for (uint32_t i = 0; i < 8; ++i) std::swap(order[i], order[i + rng.below(8 - i)]);
    const int n = rng.range(3, 6);
    for (int i = 0; i < n; ++i) put(out, country_fact(w, c, order[i]), "\n");
  } else if (kind == 1) {  // a person, tied to a country's capital
    const Citizen& p = w.citizens[rng.below(kNumCitizens)];
    const Country& k = w.countries[p.country];
    put(out, "Person: ", p.name, "\n");
    put(out, p.name, " is ", article(p.profession), " ", p.profession, " who lives in ", k.capital,
        ".\n");
    put(out, p.name, " was born in ", num(p.born), ".\n");
    put(out, country_fact(w, p.country, rng.below(2)), "\n");
  } else {  // a quiz: questions whose answers are the same facts
    const int n = rng.range(2, 4);
    for (int i = 0; i < n; ++i) {
      const Country& k = w.countries[rng.below(kNumCountries)];
      if (rng.below(2) == 0) {
        put(out, "Q: What is the capital of ", k.name, "?\nA: ", k.capital, ".\n");
      } else {
        put(out, "Q: What is ", k.name, " famous for?\nA: Its ", k.good, ".\n");
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Domain 4: code. Every "# result" comment states what the snippet would print.

const char* const kVars[] = {"x", "y", "count", "total", "price", "size", "width", "height",
                             "score", "n"};
const char* const kNouns[] = {"numbers", "items", "prices", "scores", "values", "points"};

std::string code_document(SplitMix64& rng) {
  std::string out;
  const std::string a = pick(rng, kVars);
  std::string b;
  do b = pick(rng, kVars); while (b == a);
  switch (rng.below(4)) {
    case 0: {  // a two-argument function
      static const char* const kOps[][2] = {{"add", "+"}, {"subtract", "-"}, {"multiply", "*"}};
      const auto& op = kOps[rng.below(3)];
      put(out, "def ", op[0], "_", pick(rng, kNouns), "(", a, ", ", b, "):\n");
      put(out, "    result = ", a, " ", op[1], " ", b, "\n", "    return result\n");
      break;
    }
    case 1: {  // straight-line assignments
      const int va = rng.range(1, 20), k = rng.range(2, 9);
      put(out, a, " = ", num(va), "\n", b, " = ", a, " * ", num(k), "\n");
      put(out, "print(", b, ")  # ", num(va * k), "\n");
      break;
    }
    case 2: {  // a loop summing 0 .. n-1
      const int n = rng.range(2, 12);
      put(out, a, " = 0\n", "for i in range(", num(n), "):\n", "    ", a, " += i\n");
      put(out, "print(", a, ")  # ", num(n * (n - 1) / 2), "\n");
      break;
    }
    default: {  // a branch
      const int limit = rng.range(5, 50);
      put(out, "def check_", a, "(", a, "):\n", "    if ", a, " > ", num(limit), ":\n");
      put(out, "        return \"big\"\n", "    return \"small\"\n");
      break;
    }
  }
  return out;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Public API

int synthetic_num_domains() { return SYNTHETIC_NUM_DOMAINS; }

const char* synthetic_domain_name(int domain) {
  static const char* const kNames[SYNTHETIC_NUM_DOMAINS] = {"story", "arithmetic", "list",
                                                            "facts", "code"};
  CHECK(domain >= 0 && domain < SYNTHETIC_NUM_DOMAINS, "synthetic domain ", domain,
        " does not exist (there are ", SYNTHETIC_NUM_DOMAINS, ", numbered from 0). HINT: use 0..",
        SYNTHETIC_NUM_DOMAINS - 1);
  return kNames[domain];
}

SyntheticDoc synthetic_document(uint64_t seed, uint64_t index) {
  SplitMix64 rng(mix_seed(seed, index));
  SyntheticDoc doc;
  doc.domain = static_cast<int>(rng.below(SYNTHETIC_NUM_DOMAINS));
  switch (doc.domain) {
    case SYNTHETIC_STORY: doc.text = story_document(rng); break;
    case SYNTHETIC_ARITHMETIC: doc.text = arithmetic_document(rng); break;
    case SYNTHETIC_LIST: doc.text = list_document(rng); break;
    case SYNTHETIC_FACTS: doc.text = facts_document(rng); break;
    default: doc.text = code_document(rng); break;
  }
  return doc;
}

std::string synthetic_corpus(uint64_t seed, size_t target_bytes) {
  std::string out;
  out.reserve(target_bytes + 1024);
  for (uint64_t i = 0; out.size() < target_bytes; ++i) {
    out += synthetic_document(seed, i).text;
    out += '\n';  // the empty line that separates documents
  }
  return out;
}

}  // namespace moe
