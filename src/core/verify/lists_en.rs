//! English word lists. Words are matched after the verifier's light stemming, so one form per word
//! is enough (plurals and -ed/-ing forms fold). Lists are general-language, not tuned to a data set.

/// Function words: ignored when comparing content words.
pub const STOPWORDS: &[&str] = &[
    "a", "an", "the", "i", "me", "my", "mine", "myself", "we", "us", "our", "ours", "you", "your",
    "yours", "he", "him", "his", "she", "her", "hers", "it", "its", "they", "them", "their", "theirs",
    "this", "that", "these", "those", "there", "here", "what", "which", "who", "whom", "whose", "when",
    "where", "why", "how", "is", "am", "are", "was", "were", "be", "been", "being", "do", "does", "did",
    "doing", "done", "have", "has", "had", "having", "got", "gotten", "can", "could",
    "should", "shall", "will", "would", "may", "might", "must", "need", "needs", "needed", "ought",
    "of", "in", "on", "at", "by", "for", "with", "about", "as", "into", "to", "from", "up", "if",
    "and", "or", "but", "so", "then", "than", "too", "also", "very", "any", "anything", "some",
    "something", "someone", "somebody", "one", "ones", "own", "make", "go", "going", "let", "able",
    "s", "d", "ll", "re", "ve", "m", "t", "yes", "via", "per", "still", "ever", "again", "much",
    "many", "whether", "else", "such", "way", "thing", "things", "currently", "now",
    // prepositions: their opposites are checked as contrasts, their insertion alone is no new scope
    "under", "over", "above", "below", "after", "before", "during", "within", "through", "across",
    "near", "off", "out", "inside", "outside", "among", "around", "until", "till", "since", "against",
    "along", "behind", "beyond", "toward", "towards", "upon", "onto", "down", "like", "unto",
];

/// Politeness, hesitation and question-frame words: never content, never a scope change.
pub const FILLERS: &[&str] = &[
    "please", "pls", "plz", "kindly", "just", "actually", "exactly", "really", "basically", "simply",
    "quick", "quickly", "hi", "hello", "hey", "hiya", "dear", "thanks", "thank", "thx", "cheers",
    "sorry", "bother", "wondering", "wonder", "question", "silly", "um", "umm", "uh", "er", "erm",
    "hmm", "like", "okay", "ok", "yeah", "yep", "well", "team", "anyone", "tell", "know", "want",
    "wanted", "wish", "help", "possible", "usually", "normally", "generally", "typically", "process",
    "steps", "step", "method", "procedure", "best", "right", "correct", "proper", "properly", "certain",
    "sure", "advance", "guys", "folks", "idea", "curious", "precisely", "approximately", "roughly",
    "around", "available", "option", "options", "happen", "kind", "sort", "type", "bit", "little",
    "explain", "show", "find", "whats",
    // service verbs of "do you ... X?" questions: "do you offer/provide/do X" ask the same
    "offer", "provide",
];

/// Negators (each occurrence counts once).
pub const NEGATIONS: &[&str] = &[
    "not", "no", "never", "none", "nothing", "nobody", "nowhere", "neither", "without", "non", "nor",
    // negative-polarity verbs: "avoid X" = "not do X", "stop X" = "no longer X"
    "avoid", "prevent", "refuse", "forbid", "prohibit", "ban", "lack", "fail", "cease",
    "quit", "deny", "exclude", "excluding", "except",
];

/// Words that only agree with an earlier negator in the same clause (not counted after one).
pub const NEG_CONCORD: &[&str] = &["nor", "any", "anything", "anybody", "anyone"];

/// Opposite poles: a candidate with a word of one pole is refused for a query with a word of the
/// other (when neither side has both).
pub const CONTRASTS: &[(&[&str], &[&str])] = &[
    (&["on"], &["off"]),
    (&["enable", "activate", "allow", "permit", "unblock", "grant"], &["disable", "deactivate", "block", "revoke"]),
    (&["open", "opening", "reopen"], &["close", "closing", "shut", "closure"]),
    (&["start", "begin", "launch"], &["end", "finish", "stop", "terminate"]),
    (&["buy", "purchase", "rent"], &["sell", "lease"]),
    (&["upload", "send"], &["download", "receive"]),
    (&["import"], &["export"]),
    (&["increase", "raise", "boost", "extend", "expand"], &["decrease", "reduce", "lower", "cut", "shorten", "shrink"]),
    (&["before", "prior", "earlier", "until"], &["after", "later", "beyond"]),
    (&["during", "within", "while"], &["before", "after", "outside", "beyond", "prior"]),
    (&["add", "insert", "attach", "include", "join", "invite"], &["remove", "delete", "detach", "exclude", "leave", "kick"]),
    (&["safe"], &["dangerous", "harmful", "risky"]),
    (&["min", "minimum", "least", "lowest", "smallest", "cheapest", "fewest"], &["max", "maximum", "most", "highest", "largest", "biggest", "priciest", "expensive"]),
    (&["first", "earliest", "oldest"], &["last", "latest", "final", "newest"]),
    (&["above", "over", "more", "greater", "higher", "exceed"], &["below", "under", "less", "fewer", "lower", "beneath"]),
    (&["in", "inside", "inbound", "incoming", "indoor"], &["out", "outside", "outbound", "outgoing", "outdoor"]),
    (&["up", "upgrade", "upstairs", "upward"], &["down", "downgrade", "downstairs", "downward"]),
    (&["login", "signin"], &["logout", "signout"]),
    (&["encrypt", "encode", "compress", "zip"], &["decrypt", "decode", "decompress", "unzip"]),
    (&["win", "won", "victory"], &["lose", "lost", "defeat"]),
    (&["accept", "approve", "confirm"], &["reject", "decline", "deny", "refuse"]),
    (&["hot", "warm", "heat"], &["cold", "cool", "chill", "freeze"]),
    (&["benefit", "advantage", "pro", "upside", "positive"], &["drawback", "disadvantage", "con", "downside", "negative", "risk"]),
    (&["best", "better"], &["worst", "worse"]),
    (&["fast", "quick", "fastest", "quickest"], &["slow", "slowest"]),
    (&["big", "large", "long", "tall", "wide", "heavy", "thick"], &["small", "little", "short", "narrow", "light", "thin"]),
    (&["busy", "crowded", "loud", "noisy"], &["quiet", "empty", "silent"]),
    (&["spicy", "hot"], &["mild"]),
    (&["easy", "simple"], &["hard", "difficult"]),
    (&["new", "young", "modern"], &["old", "elderly", "ancient"]),
    (&["pause", "suspend", "freeze"], &["resume", "unpause", "restart", "continue"]),
    (&["lock"], &["unlock"]),
    (&["mute"], &["unmute"]),
    (&["subscribe", "signup"], &["unsubscribe", "cancel"]),
    (&["install"], &["uninstall", "remove"]),
    (&["follow"], &["unfollow"]),
    (&["pass", "succeed", "success"], &["fail", "failure"]),
    (&["light", "bright"], &["dark", "dim"]),
    (&["push"], &["pull"]),
    (&["arrival", "arrive", "inbound"], &["departure", "depart", "leave"]),
    (&["check-in", "checkin"], &["check-out", "checkout"]),
    (&["public"], &["private"]),
    (&["full"], &["part", "partial", "half"]),
    (&["male", "man", "men", "boy", "husband", "father", "son"], &["female", "woman", "women", "girl", "wife", "mother", "daughter"]),
    (&["deposit", "credit", "income"], &["withdraw", "withdrawal", "debit", "expense"]),
    (&["lend", "loan"], &["borrow"]),
    (&["true"], &["false"]),
    (&["yes"], &["no"]),
    (&["import", "inbound"], &["export", "outbound"]),
    (&["grant", "give"], &["revoke", "take"]),
    (&["love", "like"], &["hate", "dislike"]),
    (&["pay", "charge"], &["refund", "reimburse"]),
    (&["include", "including"], &["exclude", "excluding"]),
    (&["always"], &["never", "sometimes"]),
    (&["all", "every", "each", "everything", "everyone", "entire", "whole"], &["some", "few", "several", "part", "partial"]),
    (&["north", "northern"], &["south", "southern"]),
    (&["east", "eastern"], &["west", "western"]),
    (&["left"], &["right"]),
    (&["top"], &["bottom"]),
    (&["front"], &["back", "rear"]),
    (&["high", "highest"], &["low", "lowest"]),
    (&["cheap", "cheaper", "cheapest", "affordable", "inexpensive"], &["expensive", "pricey", "costly"]),
    (&["wet", "humid"], &["dry"]),
    (&["gain", "put"], &["lose", "loss"]),
    (&["plus", "add"], &["minus", "subtract"]),
    (&["multiply"], &["divide"]),
    (&["forward", "forwards"], &["backward", "backwards", "reverse"]),
    (&["import", "read"], &["write"]),
    (&["entry", "enter", "entrance"], &["exit"]),
    (&["keep", "continue", "remain"], &["stop", "quit", "cease"]),
    (&["rise", "grow", "climb"], &["fall", "drop", "shrink", "sink"]),
    (&["early", "earlier", "earliest"], &["late", "later", "latest"]),
    (&["strong", "strongest"], &["weak", "weakest"]),
    (&["rich", "wealthy"], &["poor"]),
    (&["alive", "living"], &["dead"]),
    (&["ascending", "asc"], &["descending", "desc"]),
    (&["upper", "uppercase"], &["lower", "lowercase"]),
    (&["horizontal", "landscape"], &["vertical", "portrait"]),
    (&["sync", "synchronous"], &["async", "asynchronous"]),
    (&["client", "frontend", "front-end"], &["server", "backend", "back-end"]),
    (&["input"], &["output"]),
    (&["request"], &["response"]),
    (&["debit"], &["credit"]),
    (&["parent"], &["child"]),
];

/// Time words: each inner list is one class (first entry names it). Refused when the class sets differ.
pub const TIME: &[&[&str]] = &[
    &["today"], &["tomorrow"], &["yesterday"], &["tonight"],
    &["monday"], &["tuesday"], &["wednesday"], &["thursday"], &["friday"], &["saturday"], &["sunday"],
    &["weekday", "workday"], &["weekend"],
    &["january"], &["february"], &["march"], &["april"], &["june"], &["july"], &["august"],
    &["september"], &["october"], &["november"], &["december"],
    &["morning"], &["afternoon"], &["evening"], &["night", "overnight"], &["midnight"], &["noon", "midday"],
    &["spring"], &["summer"], &["autumn", "fall"], &["winter"],
    &["daily"], &["weekly"], &["monthly"], &["yearly", "annual", "annually"], &["hourly"], &["nightly"],
    &["christmas", "xmas"], &["easter"],
];

/// Relative time: modifier + period makes one time class ("last week", "next month").
pub const TIME_MODIFIERS: &[&str] = &["this", "last", "next", "previous", "past", "coming", "current", "same", "following"];
pub const TIME_PERIODS: &[&str] = &["day", "week", "month", "year", "weekend", "quarter", "season", "term", "semester", "hour", "minute"];

/// Scope words (who or what a question is about): each inner list is one class.
pub const SCOPE: &[&[&str]] = &[
    &["child", "children", "kid", "kids", "toddler", "minor", "pediatric", "paediatric"],
    &["baby", "babies", "infant", "newborn"],
    &["teen", "teenager", "adolescent", "youth", "teenage"],
    &["adult", "grownup", "grown-up"],
    &["senior", "elderly", "pensioner", "retiree", "retired"],
    &["student", "pupil"],
    &["pregnant", "pregnancy"],
    &["personal", "individual", "private"],
    &["business", "company", "commercial", "corporate", "enterprise", "organisation", "organization"],
    &["home", "household", "residential", "homeowner"],
    &["domestic", "national"],
    &["international", "overseas", "abroad", "foreign"],
    &["online", "web", "website"],
    &["in-store", "instore", "offline"],
    &["free"],
    &["paid"],
    &["premium"],
    &["resident", "local"],
    &["visitor", "tourist", "guest"],
    &["tenant", "renter"],
    &["landlord", "owner", "homeowner"],
    &["employee", "staff", "worker"],
    &["contractor", "freelancer", "self-employed"],
    &["colleague", "coworker"],
    &["partner", "spouse"],
    &["parent", "mother", "father", "mum", "mom", "dad"],
    &["friend"],
    &["dog", "puppy"],
    &["cat", "kitten"],
    &["veteran"],
    &["disabled", "disability"],
];

/// Cardinal and ordinal number words.
pub const NUMBERS: &[(&str, u64)] = &[
    ("zero", 0), ("one", 1), ("two", 2), ("three", 3), ("four", 4), ("five", 5), ("six", 6),
    ("seven", 7), ("eight", 8), ("nine", 9), ("ten", 10), ("eleven", 11), ("twelve", 12),
    ("thirteen", 13), ("fourteen", 14), ("fifteen", 15), ("sixteen", 16), ("seventeen", 17),
    ("eighteen", 18), ("nineteen", 19), ("twenty", 20), ("thirty", 30), ("forty", 40), ("fifty", 50),
    ("sixty", 60), ("seventy", 70), ("eighty", 80), ("ninety", 90), ("single", 1), ("dozen", 12),
    ("third", 3), ("fourth", 4), ("fifth", 5), ("sixth", 6),
    ("seventh", 7), ("eighth", 8), ("ninth", 9), ("tenth", 10), ("twice", 2),
];
pub const SCALES: &[(&str, u64)] = &[("hundred", 100), ("thousand", 1000), ("million", 1_000_000), ("billion", 1_000_000_000)];
/// Words after which "one" is a pronoun, not a number ("this one", "which one").
pub const ONE_PRONOUN_BEFORE: &[&str] = &["this", "that", "which", "the", "each", "every", "any", "no", "another", "quick", "other", "new", "right", "wrong", "only"];

/// Currencies: each inner list is one class; compared wherever they occur.
pub const CURRENCIES: &[&[&str]] = &[
    &["usd", "$", "dollar", "buck"], &["eur", "€", "euro"], &["gbp", "£", "pound", "quid", "sterling"],
    &["jpy", "¥", "yen"], &["chf", "franc"], &["inr", "₹", "rupee"], &["cad"], &["aud"], &["cny", "yuan", "rmb"],
    &["btc", "bitcoin"], &["eth", "ether"],
];

/// Units: each inner list is one class; a unit only right after a number ("5 kg", "7pm", "2-bedroom").
pub const UNITS: &[&[&str]] = &[
    &["pence", "p", "penny", "cent", "ct"],
    &["kg", "kilo", "kilogram", "kilogramme"], &["g", "gram", "gramme"], &["mg", "milligram"], &["lb", "lbs"], &["oz", "ounce"],
    &["km", "kilometre", "kilometer"], &["m", "metre", "meter"], &["cm", "centimetre", "centimeter"], &["mm", "millimetre", "millimeter"],
    &["mi", "mile"], &["ft", "foot", "feet"], &["in", "inch"], &["yd", "yard"],
    &["l", "litre", "liter"], &["ml", "millilitre", "milliliter"], &["gal", "gallon"], &["pint"],
    &["kb", "kilobyte"], &["mb", "megabyte"], &["gb", "gigabyte", "gig"], &["tb", "terabyte"],
    &["kbps"], &["mbps"], &["gbps"], &["kwh"], &["w", "watt"], &["kw", "kilowatt"], &["v", "volt"], &["a", "amp"],
    &["mph"], &["kph", "km/h"], &["°c", "celsius", "centigrade"], &["°f", "fahrenheit"], &["%", "percent", "per cent"],
    &["am", "a.m"], &["pm", "p.m"], &["ghz"], &["mhz"], &["hz"], &["px", "pixel"], &["mah"], &["x"],
    &["bedroom", "bed"], &["bathroom"], &["user", "seat"], &["person", "people", "guest", "pax"],
];

/// Duration units: a unit only right after a number ("14 days"), otherwise plain words.
pub const DURATIONS: &[&[&str]] = &[
    &["second", "sec"], &["minute", "min"], &["hour", "hr", "h"], &["day"], &["night"], &["week", "wk"],
    &["fortnight"], &["month", "mo"], &["year", "yr", "year-old"], &["decade"], &["century"],
];

/// Words that relate the tokens around them; swapping what follows them changes the question.
pub const ORDER_MARKERS: &[&str] = &["from", "to", "into", "than", "over", "onto", "toward", "towards", "instead"];

/// Small general synonym list: same-meaning substitutions that are not a different question.
pub const SYNONYMS: &[&[&str]] = &[
    &["buy", "purchase"], &["cost", "price", "charge", "fee", "pay", "rate"], &["delivery", "shipping", "postage"],
    &["change", "update", "modify", "edit", "amend", "alter", "switch", "replace", "move", "transfer"],
    &["start", "begin", "commence"], &["cancel", "end", "finish", "terminate", "conclude", "discontinue"],
    &["get", "obtain", "receive", "acquire", "request", "order"], &["send", "submit", "file", "lodge"],
    &["make", "create", "generate", "set", "setup", "establish", "produce"],
    &["register", "enrol", "enroll", "signup", "join"],
    &["shop", "store"], &["street", "road", "avenue"], &["fast", "quick", "rapid", "speedy"],
    &["previous", "earlier", "prior", "former"], &["result", "grade", "mark", "score"],
    &["car", "vehicle", "automobile", "motor"], &["phone", "mobile", "cellphone", "telephone", "cell", "smartphone"],
    &["doctor", "gp", "physician"], &["medicine", "medication", "drug", "meds"], &["flat", "apartment"],
    &["holiday", "vacation", "leave"], &["luggage", "baggage", "bag", "suitcase"], &["parcel", "package"],
    &["film", "movie"], &["autumn", "fall"], &["big", "large"], &["small", "little", "tiny"],
    &["help", "assist", "support", "aid"], &["fix", "repair", "mend"], &["show", "display"],
    &["choose", "select", "pick"], &["allow", "permit", "let"], &["problem", "issue", "trouble", "fault"],
    &["reply", "answer", "respond", "response"], &["begin", "start"], &["email", "e-mail", "mail"],
    &["agency", "agent"], &["cashpoint", "atm", "cashmachine"], &["connect", "link"], &["remove", "delete", "erase"],
    &["talk", "speak", "chat"], &["quote", "quotation", "estimate"], &["book", "reserve", "reservation", "booking"],
    &["contact", "reach", "call"], &["look", "check", "see", "view"], &["need", "require", "must"],
    &["live", "active", "activate", "activated", "enabled"], &["restaurant", "place", "venue"],
    &["wait", "waiting"], &["dispute", "challenge", "contest"], &["fastest", "quickest"], &["near", "nearby", "close"],
    &["offer", "provide", "sell", "stock"], &["include", "come"], &["use", "utilise", "utilize"],
    &["travel", "trip", "journey"], &["clean", "cleaning"], &["picture", "photo", "image"],
    &["kid", "child"], &["mum", "mom", "mother"], &["dad", "father"], &["info", "information", "detail"],
    &["money", "cash", "fund"], &["refund", "reimburse", "reimbursement"],
    // British / American spellings
    &["cheque", "check"], &["colour", "color"], &["licence", "license"], &["programme", "program"],
    &["tyre", "tire"], &["grey", "gray"], &["jewellery", "jewelry"], &["catalogue", "catalog"],
    &["defence", "defense"], &["practise", "practice"], &["aluminium", "aluminum"], &["cosy", "cozy"],
    // common abbreviations of names
    &["javascript", "js"], &["typescript", "ts"], &["kubernetes", "k8s"], &["python", "py"],
    &["usa", "us", "america", "american", "states"], &["uk", "britain", "british"], &["eu", "europe", "european"],
    &["mute", "silence"], &["lock", "freeze"], &["unlock", "unfreeze"], &["write", "compose", "draft"],
];
