"""Word lists the built-in probing tasks draw from. Plain data, no logic."""

from __future__ import annotations

# (singular, plural)
ANIMATE_NOUNS = (
    ("dog", "dogs"),
    ("cat", "cats"),
    ("teacher", "teachers"),
    ("doctor", "doctors"),
    ("farmer", "farmers"),
    ("child", "children"),
    ("man", "men"),
    ("woman", "women"),
    ("girl", "girls"),
    ("boy", "boys"),
    ("bird", "birds"),
    ("horse", "horses"),
    ("student", "students"),
    ("pilot", "pilots"),
    ("baker", "bakers"),
    ("singer", "singers"),
    ("mouse", "mice"),
    ("wolf", "wolves"),
    ("nurse", "nurses"),
    ("friend", "friends"),
)
INANIMATE_NOUNS = (
    ("table", "tables"),
    ("book", "books"),
    ("car", "cars"),
    ("chair", "chairs"),
    ("stone", "stones"),
    ("cup", "cups"),
    ("letter", "letters"),
    ("knife", "knives"),
    ("window", "windows"),
    ("bottle", "bottles"),
    ("lamp", "lamps"),
    ("key", "keys"),
    ("shelf", "shelves"),
    ("coin", "coins"),
    ("door", "doors"),
    ("ball", "balls"),
    ("box", "boxes"),
    ("hat", "hats"),
    ("phone", "phones"),
    ("leaf", "leaves"),
)
NOUNS = ANIMATE_NOUNS + INANIMATE_NOUNS

# (base, third person singular, past, past participle)
REGULAR_VERBS = (
    ("push", "pushes", "pushed", "pushed"),
    ("pull", "pulls", "pulled", "pulled"),
    ("watch", "watches", "watched", "watched"),
    ("clean", "cleans", "cleaned", "cleaned"),
    ("visit", "visits", "visited", "visited"),
    ("follow", "follows", "followed", "followed"),
    ("call", "calls", "called", "called"),
    ("kick", "kicks", "kicked", "kicked"),
    ("paint", "paints", "painted", "painted"),
    ("lift", "lifts", "lifted", "lifted"),
)
IRREGULAR_VERBS = (
    ("see", "sees", "saw", "seen"),
    ("take", "takes", "took", "taken"),
    ("eat", "eats", "ate", "eaten"),
    ("find", "finds", "found", "found"),
    ("hold", "holds", "held", "held"),
    ("bring", "brings", "brought", "brought"),
    ("buy", "buys", "bought", "bought"),
    ("write", "writes", "wrote", "written"),
    ("give", "gives", "gave", "given"),
    ("break", "breaks", "broke", "broken"),
    ("throw", "throws", "threw", "thrown"),
    ("steal", "steals", "stole", "stolen"),
)
TRANSITIVE_VERBS = REGULAR_VERBS + IRREGULAR_VERBS
# over-regularised past forms of the irregular verbs, by base form
WRONG_PASTS = {
    "see": "seed",
    "take": "taked",
    "eat": "eated",
    "find": "finded",
    "hold": "holded",
    "bring": "bringed",
    "buy": "buyed",
    "write": "writed",
    "give": "gived",
    "break": "breaked",
    "throw": "throwed",
    "steal": "stealed",
}
# (base, third person singular, past) of verbs used without an object
INTRANSITIVE_VERBS = (
    ("sleep", "sleeps", "slept"),
    ("laugh", "laughs", "laughed"),
    ("run", "runs", "ran"),
    ("smile", "smiles", "smiled"),
    ("wait", "waits", "waited"),
    ("sing", "sings", "sang"),
    ("cry", "cries", "cried"),
    ("arrive", "arrives", "arrived"),
)

# (positive, comparative, superlative)
ADJECTIVE_DEGREES = (
    ("big", "bigger", "biggest"),
    ("small", "smaller", "smallest"),
    ("old", "older", "oldest"),
    ("young", "younger", "youngest"),
    ("tall", "taller", "tallest"),
    ("short", "shorter", "shortest"),
    ("long", "longer", "longest"),
    ("warm", "warmer", "warmest"),
    ("cold", "colder", "coldest"),
    ("fast", "faster", "fastest"),
    ("slow", "slower", "slowest"),
    ("dark", "darker", "darkest"),
)
ADJECTIVES = tuple(a[0] for a in ADJECTIVE_DEGREES) + ("red", "green", "quiet", "happy", "heavy")
SYNONYMS = (
    ("big", "large"),
    ("small", "little"),
    ("happy", "glad"),
    ("quick", "fast"),
    ("quiet", "silent"),
    ("angry", "mad"),
    ("hard", "difficult"),
    ("begin", "start"),
)
ANTONYMS = (
    ("big", "small"),
    ("happy", "sad"),
    ("hot", "cold"),
    ("fast", "slow"),
    ("old", "young"),
    ("light", "heavy"),
    ("quiet", "loud"),
    ("full", "empty"),
    ("early", "late"),
)

MALE_NAMES = ("John", "Peter", "Tom", "Paul", "David", "James", "Mark", "Sam", "Luke", "Adam")
FEMALE_NAMES = ("Mary", "Anna", "Sarah", "Emma", "Lucy", "Kate", "Julia", "Alice", "Rose", "Eva")
NAMES = MALE_NAMES + FEMALE_NAMES

NUMBER_WORDS = (
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
)

# category -> members
CATEGORIES = {
    "animal": ("dog", "cat", "horse", "bird", "wolf", "mouse", "cow", "sheep"),
    "tool": ("hammer", "chisel", "drill", "wrench", "shovel", "axe"),
    "fruit": ("apple", "pear", "banana", "cherry", "plum", "grape"),
    "vehicle": ("car", "bus", "truck", "train", "bicycle", "boat"),
}
PLACES = ("park", "garden", "kitchen", "station", "market", "library", "school", "river")
PLURAL_GOODS = ("apples", "pears", "books", "cups", "coins", "boxes", "chairs", "hats")

# (cause, effect that follows it, an event that contrasts with it)
CAUSE_EFFECT = (
    ("was tired", "went to bed", "stayed up all night"),
    ("was hungry", "ate a sandwich", "skipped lunch"),
    ("was cold", "put on a coat", "opened the window"),
    ("was late", "ran to the station", "walked slowly"),
    ("was thirsty", "drank some water", "refused a drink"),
    ("was sick", "saw a doctor", "went to work"),
    ("was bored", "read a book", "sat still"),
    ("was sad", "called a friend", "smiled all day"),
)
# (first event, second event) in their natural order, as verb phrases
EVENT_PAIRS = (
    ("bought a ball", "played with it"),
    ("cooked dinner", "ate it"),
    ("wrote a letter", "posted it"),
    ("found a key", "opened the door"),
    ("planted a seed", "watered it"),
    ("caught a fish", "cooked it"),
    ("washed the cup", "dried it"),
    ("opened the box", "emptied it"),
)
