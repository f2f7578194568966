//! French word lists (same shapes as lists_en.rs). Elisions (l', d', qu', n'...) are split off by the
//! tokenizer; n' becomes "ne".

pub const STOPWORDS: &[&str] = &[
    "le", "la", "les", "l", "un", "une", "des", "de", "du", "d", "au", "aux", "à", "a", "et", "ou",
    "que", "qu", "quoi", "qui", "quel", "quelle", "quels", "quelles", "comment", "quand", "où", "pourquoi",
    "est", "sont", "être", "suis", "ai", "as", "avons", "avez", "ont", "avoir", "je", "j", "tu", "il",
    "elle", "nous", "vous", "ils", "elles", "on", "me", "m", "te", "t", "se", "s", "c", "ce", "cet",
    "cette", "ces", "mon", "ma", "mes", "ton", "ta", "tes", "son", "sa", "ses", "notre", "nos", "votre",
    "vos", "leur", "leurs", "en", "dans", "par", "pour", "sur", "avec", "peux", "peut", "pouvez",
    "pouvoir", "dois", "doit", "devez", "faire", "fais", "fait", "combien", "très", "aussi", "y", "si",
    "est-ce", "ça", "cela", "faut",
];
pub const FILLERS: &[&str] = &[
    "bonjour", "salut", "merci", "plaît", "plait", "svp", "stp", "désolé", "desole", "juste",
    "exactement", "vraiment", "savoir", "dire", "aide", "aider", "possible", "moyen", "façon", "facon",
    "voudrais", "veux", "aimerais",
];
pub const NEGATIONS: &[&str] = &[
    "ne", "pas", "jamais", "rien", "aucun", "aucune", "sans", "nul", "nulle", "ni", "non", "éviter", "eviter",
    "interdit", "interdire",
];
pub const NEG_CONCORD: &[&str] = &["pas", "jamais", "rien", "aucun", "aucune", "ni", "nul", "nulle"];
pub const CONTRASTS: &[(&[&str], &[&str])] = &[
    (&["activer", "allumer", "autoriser", "permettre"], &["désactiver", "desactiver", "éteindre", "eteindre", "interdire", "bloquer"]),
    (&["ouvrir", "ouvert", "ouverte", "ouverture"], &["fermer", "fermé", "fermée", "ferme", "fermeture"]),
    (&["acheter", "achat"], &["vendre", "vente"]),
    (&["télécharger", "telecharger"], &["téléverser", "televerser"]),
    (&["importer"], &["exporter"]),
    (&["augmenter", "hausse"], &["diminuer", "réduire", "reduire", "baisse", "baisser"]),
    (&["avant"], &["après", "apres"]),
    (&["ajouter", "inclure"], &["supprimer", "retirer", "enlever", "exclure"]),
    (&["sûr"], &["dangereux"]),
    (&["légal", "legal"], &["illégal", "illegal"]),
    (&["minimum"], &["maximum"]),
    (&["premier", "première", "premiere"], &["dernier", "dernière", "derniere"]),
    (&["dessus", "au-dessus"], &["dessous", "au-dessous"]),
    (&["entrée", "entree", "dedans"], &["sortie", "dehors"]),
    (&["gagner"], &["perdre"]),
    (&["accepter"], &["refuser"]),
    (&["chaud", "chaude"], &["froid", "froide"]),
    (&["meilleur", "meilleure", "mieux"], &["pire"]),
    (&["avantage"], &["inconvénient", "inconvenient"]),
    (&["homme", "hommes"], &["femme", "femmes"]),
    (&["commencer", "démarrer", "demarrer"], &["terminer", "finir", "arrêter", "arreter"]),
    (&["tout", "tous", "toutes"], &["quelques", "certains", "certaines"]),
];
pub const TIME: &[&[&str]] = &[
    &["today", "aujourd'hui", "aujourdhui"], &["tomorrow", "demain"], &["yesterday", "hier"], &["tonight", "ce soir"],
    &["monday", "lundi"], &["tuesday", "mardi"], &["wednesday", "mercredi"], &["thursday", "jeudi"],
    &["friday", "vendredi"], &["saturday", "samedi"], &["sunday", "dimanche"], &["weekend", "week-end"],
    &["january", "janvier"], &["february", "février", "fevrier"], &["march", "mars"], &["april", "avril"],
    &["may", "mai"], &["june", "juin"], &["july", "juillet"], &["august", "août", "aout"],
    &["september", "septembre"], &["october", "octobre"], &["november", "novembre"], &["december", "décembre", "decembre"],
    &["morning", "matin"], &["evening", "soir", "soirée"], &["night", "nuit"], &["afternoon", "après-midi"],
    &["summer", "été"], &["winter", "hiver"], &["spring", "printemps"], &["autumn", "automne"],
];
pub const TIME_MODIFIERS: &[&str] = &["prochain", "prochaine", "dernier", "dernière", "ce", "cette", "cet"];
pub const TIME_PERIODS: &[&str] = &["semaine", "mois", "an", "année", "annee", "jour"];
pub const SCOPE: &[&[&str]] = &[
    &["child", "enfant", "enfants", "fils", "fille"],
    &["baby", "bébé", "bebe", "bébés", "nourrisson"],
    &["adult", "adulte", "adultes"],
    &["senior", "retraité", "retraités", "âgées"],
    &["student", "étudiant", "étudiants", "etudiant", "etudiants", "élève"],
    &["business", "entreprise", "entreprises", "professionnel", "commercial"],
    &["personal", "particulier", "personnel"],
    &["international", "étranger", "etranger"],
    &["domestic", "national"],
];
pub const NUMBERS: &[(&str, u64)] = &[
    ("zéro", 0), ("deux", 2), ("trois", 3), ("quatre", 4), ("cinq", 5), ("six", 6), ("sept", 7),
    ("huit", 8), ("neuf", 9), ("dix", 10), ("onze", 11), ("douze", 12), ("quinze", 15), ("vingt", 20),
    ("trente", 30), ("quarante", 40), ("cinquante", 50), ("soixante", 60), ("cent", 100), ("mille", 1000),
];
pub const CURRENCIES: &[&[&str]] = &[&["usd", "dollar", "dollars"], &["eur", "euros"], &["gbp", "livre", "livres"], &["chf", "francs"]];
pub const DURATIONS: &[&[&str]] = &[
    &["minute", "minutes"], &["hour", "heure", "heures"], &["day", "jour", "jours"],
    &["week", "semaine", "semaines"], &["month", "mois"], &["year", "an", "ans", "année", "années"],
];
pub const ORDER_MARKERS: &[&str] = &["vers", "depuis", "jusqu'à", "contre"];
pub const SYNONYMS: &[&[&str]] = &[
    &["changer", "modifier", "mettre"], &["prix", "coût", "cout", "tarif"], &["livraison", "expédition", "expedition"],
    &["commencer", "débuter", "debuter"], &["voiture", "auto", "véhicule"], &["annuler", "résilier", "resilier"],
    &["mot", "passe"], &["commande"],
];
