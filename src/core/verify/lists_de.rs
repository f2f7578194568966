//! German word lists (same shapes as lists_en.rs). German capitalises every noun, so capitalised words
//! are not taken as names in German text (see tokens.rs).

pub const STOPWORDS: &[&str] = &[
    "der", "die", "das", "den", "dem", "des", "ein", "eine", "einen", "einem", "einer", "eines", "und",
    "oder", "aber", "wie", "was", "wer", "wo", "wann", "warum", "welche", "welcher", "welches", "ist",
    "sind", "bin", "bist", "war", "sein", "habe", "hat", "haben", "ich", "du", "er", "sie", "es", "wir",
    "ihr", "mich", "mir", "dich", "dir", "sich", "uns", "euch", "mein", "meine", "meinen", "meinem",
    "meiner", "dein", "deine", "ihre", "ihren", "unser", "unsere", "in", "im", "an", "am", "auf", "für",
    "mit", "zu", "zum", "zur", "bei", "beim", "aus", "über", "um", "kann", "kannst", "können", "muss",
    "müssen", "soll", "sollte", "werden", "wird", "man", "viel", "viele", "wieviel", "wie viel", "auch",
    "sehr", "noch", "schon", "ob", "dass", "wenn", "mal", "gibt", "bitte", "machen", "mache",
];
pub const FILLERS: &[&str] = &[
    "hallo", "danke", "bitte", "moin", "servus", "entschuldigung", "genau", "wirklich", "eigentlich",
    "einfach", "wissen", "sagen", "hilfe", "helfen", "möglich", "moglich", "weg", "möchte", "mochte", "würde",
];
pub const NEGATIONS: &[&str] = &[
    "nicht", "kein", "keine", "keinen", "keinem", "keiner", "keines", "nie", "niemals", "ohne", "nichts",
    "niemand", "nirgends", "weder", "vermeiden", "verboten", "verbieten",
];
pub const NEG_CONCORD: &[&str] = &["noch"];
pub const CONTRASTS: &[(&[&str], &[&str])] = &[
    (&["einschalten", "aktivieren", "erlauben", "anmachen"], &["ausschalten", "deaktivieren", "verbieten", "ausmachen", "sperren"]),
    (&["öffnen", "offen", "geöffnet"], &["schließen", "geschlossen"]),
    (&["kaufen", "kauf"], &["verkaufen", "verkauf"]),
    (&["hochladen"], &["herunterladen", "runterladen"]),
    (&["importieren"], &["exportieren"]),
    (&["erhöhen", "steigern"], &["senken", "verringern", "reduzieren"]),
    (&["bevor", "vorher"], &["nachdem", "danach"]),
    (&["hinzufügen", "einfügen"], &["entfernen", "löschen"]),
    (&["sicher"], &["gefährlich", "unsicher"]),
    (&["legal"], &["illegal"]),
    (&["minimum", "billigste", "wenigsten"], &["maximum", "teuerste", "meisten"]),
    (&["erste", "ersten"], &["letzte", "letzten"]),
    (&["oberhalb"], &["unterhalb"]),
    (&["eingang"], &["ausgang"]),
    (&["anmelden", "einloggen"], &["abmelden", "ausloggen"]),
    (&["gewinnen"], &["verlieren"]),
    (&["annehmen", "akzeptieren"], &["ablehnen"]),
    (&["heiß", "heiss", "warm"], &["kalt"]),
    (&["besten", "beste", "besser"], &["schlechteste", "schlechter"]),
    (&["vorteil", "vorteile"], &["nachteil", "nachteile"]),
    (&["mann", "männer"], &["frau", "frauen"]),
    (&["starten", "beginnen"], &["beenden", "stoppen"]),
    (&["alle", "alles"], &["einige", "manche"]),
];
pub const TIME: &[&[&str]] = &[
    &["today", "heute"], &["tomorrow", "morgen"], &["yesterday", "gestern"], &["tonight", "heute abend"],
    &["monday", "montag"], &["tuesday", "dienstag"], &["wednesday", "mittwoch"], &["thursday", "donnerstag"],
    &["friday", "freitag"], &["saturday", "samstag", "sonnabend"], &["sunday", "sonntag"], &["weekend", "wochenende"],
    &["january", "januar"], &["february", "februar"], &["march", "märz", "marz"], &["april"], &["may", "mai"],
    &["june", "juni"], &["july", "juli"], &["august"], &["september"], &["october", "oktober"],
    &["november"], &["december", "dezember"],
    &["evening", "abend", "abends"], &["night", "nacht", "nachts"], &["afternoon", "nachmittag"],
    &["summer", "sommer"], &["winter"], &["spring", "frühling"], &["autumn", "herbst"],
];
pub const TIME_MODIFIERS: &[&str] = &["nächste", "nächsten", "nachste", "letzte", "letzten", "diese", "diesen", "dieses"];
pub const TIME_PERIODS: &[&str] = &["woche", "monat", "jahr", "tag"];
pub const SCOPE: &[&[&str]] = &[
    &["child", "kind", "kinder"],
    &["baby", "babys", "säugling"],
    &["adult", "erwachsene", "erwachsenen", "erwachsener"],
    &["senior", "senioren", "rentner"],
    &["student", "studenten", "schüler"],
    &["business", "firma", "unternehmen", "geschäftlich", "gewerblich"],
    &["personal", "privat", "persönlich"],
    &["international", "ausland"],
    &["domestic", "inland"],
];
pub const NUMBERS: &[(&str, u64)] = &[
    ("null", 0), ("eins", 1), ("zwei", 2), ("drei", 3), ("vier", 4), ("fünf", 5), ("sechs", 6),
    ("sieben", 7), ("acht", 8), ("neun", 9), ("zehn", 10), ("elf", 11), ("zwölf", 12), ("zwanzig", 20),
    ("dreißig", 30), ("vierzig", 40), ("fünfzig", 50), ("hundert", 100), ("tausend", 1000),
];
pub const CURRENCIES: &[&[&str]] = &[&["usd", "dollar"], &["eur", "euro"], &["gbp", "pfund"], &["chf", "franken"]];
pub const DURATIONS: &[&[&str]] = &[
    &["minute", "minuten"], &["hour", "stunde", "stunden"], &["day", "tag", "tage", "tagen"],
    &["week", "woche", "wochen"], &["month", "monat", "monate", "monaten"], &["year", "jahr", "jahre", "jahren"],
];
pub const ORDER_MARKERS: &[&str] = &["nach", "von", "als", "bis"];
pub const SYNONYMS: &[&[&str]] = &[
    &["ändern", "andern", "aktualisieren", "wechseln"], &["preis", "kosten", "gebühr", "gebuhr"],
    &["lieferung", "versand"], &["auto", "wagen", "fahrzeug"], &["kündigen", "kundigen", "stornieren"],
    &["passwort", "kennwort"], &["beginnen", "anfangen"],
];
