//! Unit tests per refusal reason and language, passes for paraphrases, typos and canonical variants.
use super::{verify, Refusal};

fn refused(a: &str, b: &str, why: Refusal) {
    assert_eq!(verify(a, b), Err(why), "{a:?} / {b:?}");
    assert!(verify(b, a).is_err(), "not symmetric: {b:?} / {a:?}");
}

fn passes(a: &str, b: &str) {
    assert_eq!(verify(a, b), Ok(()), "{a:?} / {b:?}");
    assert_eq!(verify(b, a), Ok(()), "not symmetric: {b:?} / {a:?}");
}

#[test]
fn codes_are_stable_and_unique() {
    let codes: Vec<&str> = Refusal::ALL.iter().map(Refusal::code).collect();
    assert_eq!(codes, ["number", "unit", "negation", "contrast", "time", "scope", "entity", "order", "substitution"]);
}

#[test]
fn number_en() {
    refused("Convert 100 USD to GBP", "Convert 1000 USD to GBP", Refusal::Number);
    refused("Is Python 3.8 faster than Java?", "Is Python 3.12 faster than Java?", Refusal::Number);
    refused("Who won the World Cup in 2014?", "Who won the World Cup in 2018?", Refusal::Number);
    refused("How many calories are in one egg?", "How many calories are in three eggs?", Refusal::Number);
    refused("What's 15% of 200?", "What's 50% of 200?", Refusal::Number);
    refused("Book the room from the 3rd to the 5th", "Book the room from the 5th to the 13th", Refusal::Number);
    // digits and number words are the same number
    passes("Transfer £50 to my savings account", "Transfer fifty pounds to my savings account");
}

#[test]
fn unit_en() {
    refused("Remind me at 7am", "Remind me at 7pm", Refusal::Unit);
    refused("Convert 100 USD to EUR", "Convert 100 USD to JPY", Refusal::Unit);
    refused("How long should I roast a 2kg chicken?", "How long should I roast a 2lb chicken?", Refusal::Unit);
    refused("Can I return it after 14 days?", "Can I return it after 14 weeks?", Refusal::Unit);
}

#[test]
fn negation_en() {
    refused("Cancel my subscription", "Don't cancel my subscription", Refusal::Negation);
    refused("Which items can be recycled?", "Which items can't be recycled?", Refusal::Negation);
    refused(
        "Do I need a prescription for this medicine?",
        "Can I get this medicine without a prescription?",
        Refusal::Negation,
    );
    refused(
        "Which foods should I eat before surgery?",
        "Which foods should I avoid before surgery?",
        Refusal::Negation,
    );
    refused("What's the price for members?", "What's the price for non-members?", Refusal::Negation);
    // the same negation written two ways
    passes("I can't log in to my account", "I cannot log in to my account");
}

#[test]
fn contrast_en() {
    refused("How do I turn on dark mode?", "How do I turn off dark mode?", Refusal::Contrast);
    refused("How do I enable dark mode?", "How do I disable dark mode?", Refusal::Contrast);
    refused("Is the clinic open on Sundays?", "Is the clinic closed on Sundays?", Refusal::Contrast);
    refused("Is ibuprofen safe to take with alcohol?", "Is ibuprofen unsafe to take with alcohol?", Refusal::Contrast);
    refused("How do I lock my card?", "How do I unlock my card?", Refusal::Contrast);
    refused(
        "How much is delivery for orders under £50?",
        "How much is delivery for orders over £50?",
        Refusal::Contrast,
    );
    refused("What's the check-in time?", "What's the check-out time?", Refusal::Contrast);
    refused("How do I sign in?", "How do I sign out?", Refusal::Contrast);
    refused(
        "Which appliances use the most electricity?",
        "Which appliances use the least electricity?",
        Refusal::Contrast,
    );
}

#[test]
fn time_en() {
    refused("What's the weather in Paris today?", "What's the weather in Paris tomorrow?", Refusal::Time);
    refused("Are you open on Saturday?", "Are you open on Sunday?", Refusal::Time);
    refused("What was my bill last month?", "What was my bill next month?", Refusal::Time);
    refused("What was my bill in January?", "What was my bill in June?", Refusal::Time);
    // a typo in a day name is the same day
    passes("What time does the leisure centre open on Mondays?", "What time does the leisure center open on Mondys?");
}

#[test]
fn scope_en() {
    refused("What's the paracetamol dose for adults?", "What's the paracetamol dose for children?", Refusal::Scope);
    refused("What's my account balance?", "What's my joint account balance?", Refusal::Scope);
    refused("How do I reset my password?", "How do I reset my colleague's password?", Refusal::Scope);
    refused("Does my home insurance cover floods?", "Does my business insurance cover floods?", Refusal::Scope);
    passes("Is breakfast included for kids?", "Do children get breakfast included?");
}

#[test]
fn entity_en() {
    refused("Who wrote Wuthering Heights?", "Who wrote Jane Eyre?", Refusal::Entity);
    refused("What's the capital of Australia?", "What's the capital of Austria?", Refusal::Entity);
    refused("Who is the CEO of Microsoft?", "Who is the CEO of Apple?", Refusal::Entity);
    refused("How do I reset my Gmail password?", "How do I reset my Outlook password?", Refusal::Entity);
    refused("What does my_config.load_all do?", "What does my_config.load_one do?", Refusal::Entity);
    // case alone does not make a name
    passes("What are your delivery options to Northern Ireland?", "WHAT ARE YOUR DELIVERY OPTIONS TO NORTHERN IRELAND");
}

#[test]
fn order_en() {
    refused("Convert 100 USD to EUR", "Convert 100 EUR to USD", Refusal::Order);
    refused("Is Rust faster than Go?", "Is Go faster than Rust?", Refusal::Order);
    refused(
        "How do I migrate my database from MySQL to Postgres?",
        "How do I migrate my database from Postgres to MySQL?",
        Refusal::Order,
    );
    refused(
        "Transfer £50 from my savings to my current account",
        "Transfer £50 from my current account to my savings",
        Refusal::Order,
    );
    refused("Can I exchange the medium for a large?", "Can I exchange the large for a medium?", Refusal::Order);
    refused("How long is the flight to London?", "How long is the flight from London?", Refusal::Order);
    // a fronted phrase or a phrase moved as a whole keeps the roles
    passes("Is there a discount for students on train tickets?", "On train tickets, is there a discount for students?");
    passes("How do I apply for a primary school place?", "How do I apply for a place at a primary school?");
    // two words swapped around "or"/"and" ask the same
    passes("Is a tomato a fruit or a vegetable?", "Is a tomato a vegetable or a fruit?");
    passes("Which is bigger, the Moon or Mercury?", "Which is bigger, Mercury or the Moon?");
    refused(
        "What's the time difference between Tokyo and London? Is Tokyo ahead?",
        "What's the time difference between London and Tokyo? Is London ahead?",
        Refusal::Order,
    );
}

#[test]
fn substitution_en() {
    refused("How do I delete a message?", "How do I delete my account?", Refusal::Substitution);
    refused("Does the hotel have a pool?", "Does the hotel have a gym?", Refusal::Substitution);
    refused("How do I claim expenses?", "How do I approve expenses?", Refusal::Substitution);
    refused("What's the late fee for rent?", "What's the late fee for library books?", Refusal::Substitution);
    refused("Python?", "Java?", Refusal::Substitution);
    refused("weather", "news", Refusal::Substitution);
    // listed synonyms and typos are not substitutions
    passes("How do I find my nearest store?", "How do I find my nearest shop?");
    passes("How do I change the email address on my account?", "How do I chnage the email adress on my acount?");
    passes("When does the autumn term start?", "When does the autumn term begin?");
}

#[test]
fn paraphrases_and_near_repeats_pass() {
    passes("How do I reset my google account password?", "What is the process for changing my google login password?");
    passes("What's the capital of Australia?", "Which city is Australia's capital?");
    passes(
        "What are the visiting hours on the maternity ward?",
        "Hi! What are the visiting hours on the maternity ward, please? Thanks",
    );
    passes("What is the capital of France?", "what is the capital of france");
    passes("How do I bleed a radiator?", "Sorry, silly question, but how do I bleed a radiator?");
    passes("Do you accept Apple Pay?", "Do You Accept Apple Pay?");
    passes("How do I check my data usage?", "um how do i check my data usage");
    passes("Morning! How do I get a bulky waste collection?", "How do I get a bulky waste collection?");
}

#[test]
fn spanish() {
    refused("¿Cómo activo el modo oscuro?", "¿Cómo desactivo el modo oscuro?", Refusal::Contrast);
    refused("¿Puedo cancelar mi pedido?", "¿No puedo cancelar mi pedido?", Refusal::Negation);
    refused("¿Qué tiempo hará mañana en Madrid?", "¿Qué tiempo hará el lunes en Madrid?", Refusal::Time);
    refused("¿Cuánto cuesta el envío de dos paquetes?", "¿Cuánto cuesta el envío de tres paquetes?", Refusal::Number);
    refused("¿Cómo convierto una fecha a texto?", "¿Cómo convierto un texto a fecha?", Refusal::Order);
    // negative concord: "no ... nada" is one negation
    passes("No quiero nada", "no quiero nada.");
    passes("¿Cómo puedo cambiar mi contraseña?", "¿Cómo puedo modificar mi contraseña?");
}

#[test]
fn french() {
    refused("Comment activer le mode sombre ?", "Comment désactiver le mode sombre ?", Refusal::Contrast);
    refused("Le magasin est-il ouvert le dimanche ?", "Le magasin est-il fermé le dimanche ?", Refusal::Contrast);
    refused("Puis-je annuler ma commande ?", "Je ne peux pas annuler ma commande ?", Refusal::Negation);
    refused("Quel temps fera-t-il demain à Paris ?", "Quel temps fera-t-il aujourd'hui à Paris ?", Refusal::Time);
    // "ne ... pas" is one negation, elisions split
    passes("Pourquoi l'application ne démarre pas ?", "Pourquoi l’application ne démarre pas");
}

#[test]
fn german() {
    refused("Wie schalte ich den Dunkelmodus ein?", "Wie schalte ich den Dunkelmodus nicht ein?", Refusal::Negation);
    refused("Wie kann ich die Daten importieren?", "Wie kann ich die Daten exportieren?", Refusal::Contrast);
    refused("Wie wird das Wetter morgen in Berlin?", "Wie wird das Wetter heute in Berlin?", Refusal::Time);
    refused("Wie viel kosten zwei Tickets?", "Wie viel kosten drei Tickets?", Refusal::Number);
    refused("Kann ich mit dem Auto nach Berlin fahren?", "Kann ich mit dem Auto von Berlin fahren?", Refusal::Order);
    // capitalised nouns are not names in German: a reworded question still passes
    passes("Wie kann ich mein Passwort ändern?", "Wie kann ich mein Kennwort ändern?");
}

#[test]
fn scope_entity_number_per_language() {
    refused(
        "¿Cuál es la dosis de paracetamol para niños?",
        "¿Cuál es la dosis de paracetamol para adultos?",
        Refusal::Scope,
    );
    refused("¿Cuál es la capital de Australia?", "¿Cuál es la capital de Austria?", Refusal::Entity);
    refused(
        "Quelle est la dose de paracétamol pour les enfants ?",
        "Quelle est la dose de paracétamol pour les adultes ?",
        Refusal::Scope,
    );
    refused("Combien coûtent deux billets ?", "Combien coûtent trois billets ?", Refusal::Number);
    refused("Quelle est la capitale de la Slovénie ?", "Quelle est la capitale de la Slovaquie ?", Refusal::Entity);
    refused("Welche Dosis Paracetamol ist für Kinder?", "Welche Dosis Paracetamol ist für Erwachsene?", Refusal::Scope);
    // German capitalises nouns, so a swapped city is caught as a one-word substitution
    refused("Wie ist das Wetter heute in Berlin?", "Wie ist das Wetter heute in München?", Refusal::Substitution);
    passes("¿Cuál es la capital de Francia?", "cual es la capital de francia");
    passes("Wie ist das Wetter heute in Berlin?", "wie ist das wetter heute in berlin");
}

#[test]
fn symmetric_on_mixed_pairs() {
    let pairs = [
        ("Convert 100 USD to EUR", "How many euros is 100 dollars?"),
        ("How do I cancel my subscription?", "I'd like to end my subscription, how do I do that?"),
        ("Is the 9:15 train on time?", "Is the 9:45 train on time?"),
        ("What are the benefits of remote work?", "What are the drawbacks of remote work?"),
        ("How do I apply for a school place for my child?", "How do I aply for a school place for my chlid?"),
    ];
    for (a, b) in pairs {
        assert_eq!(verify(a, b).is_ok(), verify(b, a).is_ok(), "{a:?} / {b:?}");
    }
}

#[test]
fn long_prompts_stay_cheap_and_decide() {
    let body = "please review the following paragraph about the history of the city and its rivers. ".repeat(400);
    let a = format!("{body} Is it safe to swim there in July?");
    let b = format!("{body} Is it unsafe to swim there in July?");
    assert_eq!(verify(&a, &b), Err(Refusal::Contrast));
    assert_eq!(verify(&a, &a.to_uppercase()), Ok(()));
}

#[test]
fn strictness_for_qualifiers() {
    use super::{verify_with, Strictness};
    // a time/scope word on one side only, in a reworded question: Balanced serves it, Strict not
    let (a, b) = ("Do I need a visa to visit Japan as a tourist?", "Is a visa required for a holiday trip to Japan?");
    assert_eq!(verify_with(a, b, Strictness::Balanced), Ok(()));
    assert_eq!(verify_with(a, b, Strictness::Strict), Err(Refusal::Scope));
    // the same qualifier added as a minimal edit is refused by both
    for s in Strictness::ALL {
        assert_eq!(
            verify_with("What are the symptoms of flu?", "What are the symptoms of flu in babies?", s),
            Err(Refusal::Scope)
        );
        assert_eq!(
            verify_with("What time does the post office close?", "What time does the post office close today?", s),
            Err(Refusal::Time)
        );
        assert_eq!(Strictness::from_code(s.code()), Some(s));
    }
}

#[test]
#[ignore = "debug helper"]
fn debug_profiles() {
    let a = std::env::var("A").unwrap_or_default();
    let b = std::env::var("B").unwrap_or_default();
    for t in [&a, &b] {
        let p = super::profile::Profile::new(t);
        println!(
            "{:?}\n  time {:?} scope {:?} names {:?} neg {} nums {:?} units {:?}\n  content {:?}\n  rel {:?}",
            p.toks.iter().map(|t| &t.w).collect::<Vec<_>>(),
            p.time,
            p.scope,
            p.names,
            p.negations,
            p.nums,
            p.units,
            p.content.iter().map(|c| &c.key).collect::<Vec<_>>(),
            p.relations
        );
    }
    println!("{:?}", verify(&a, &b));
}

#[test]
fn compounds_split_or_joined_pass() {
    passes("How do I change my username?", "how do i change my user name?");
    passes("How do I set up two-factor login?", "How do I set up two-factor log in?");
    passes("Where is the checkout page?", "Where is the check out page?");
    passes("¿Cómo cambio mi contraseña de correo electrónico?", "¿Cómo cambio mi contraseña de correoelectrónico?");
    passes("Wie ändere ich meinen Benutzername?", "Wie ändere ich meinen Benutzer Name?");
    // a joined word is no licence for another substitution
    refused("How do I change my username?", "How do I hide my user name?", Refusal::Substitution);
    refused("How do I change my username?", "How do I change my user password?", Refusal::Substitution);
    refused("How is pay calculated over time?", "How is overtime pay calculated?", Refusal::Substitution);
}

#[test]
fn short_forms_of_names_pass() {
    passes("How do I back up a PostgreSQL database?", "How do I back up a Postgres database?");
    passes(
        "How do I make a column unique in PostgreSQL?",
        "How do I add a uniqueness constraint to a Postgres column?",
    );
    passes("¿Cómo hago una copia de seguridad de MongoDB?", "¿Cómo hago una copia de seguridad de Mongo?");
    passes("Comment sauvegarder une base PostgreSQL ?", "Comment sauvegarder une base Postgres ?");
    // other names stay other names
    refused("How do I use Java streams?", "How do I use JavaScript streams?", Refusal::Entity);
    refused("How do I back up a PostgreSQL database?", "How do I back up a MySQL database?", Refusal::Entity);
}

#[test]
fn refusal_verbs_share_polarity() {
    passes("Why was my payment refused?", "Why was my payment rejected?");
    passes("Why was my card declined at checkout?", "Why was my card refused at checkout?");
    passes("My visa application was denied, what now?", "My visa application was rejected, what now?");
    passes("¿Por qué fue rechazado mi pago?", "¿Por qué fue denegado mi pago?");
    passes("Pourquoi mon paiement a-t-il été refusé ?", "Pourquoi mon paiement a-t-il été rejeté ?");
    passes("Warum wurde meine Zahlung abgelehnt?", "Warum wurde meine Zahlung verweigert?");
    // accepted against refused is still another question
    refused("Why was my payment accepted?", "Why was my payment rejected?", Refusal::Negation);
    refused("Warum wurde meine Zahlung akzeptiert?", "Warum wurde meine Zahlung abgelehnt?", Refusal::Negation);
    refused("How do I accept a return request?", "How do I decline a return request?", Refusal::Negation);
}

#[test]
fn derivations_pass() {
    refused("How do I get my bank statement?", "How do I get my bank state?", Refusal::Substitution);
    passes(
        "What's the daily limit for cash withdrawals at a cashpoint?",
        "What's the daily limit for withdrawing cash at an ATM?",
    );
    // a derivation does not excuse a second change
    refused("What's the limit for cash withdrawals?", "What's the fee for withdrawing cash?", Refusal::Substitution);
}

#[test]
fn light_head_nouns_pass() {
    passes("What's the excess on my contents insurance?", "What is the excess on my contents insurance policy?");
    passes("What's the minimum order for delivery?", "What's the minimum order value for delivery?");
    passes("How do I change my PIN?", "How do I change my PIN number?");
    passes("¿Cuál es el pedido mínimo?", "¿Cuál es el valor mínimo del pedido?");
    // any other added word is still a qualifier
    refused("How do I change my PIN?", "How do I change my card PIN?", Refusal::Scope);
    refused("How do I change my phone?", "How do I change my phone number?", Refusal::Scope);
}

#[test]
fn scope_words_in_another_sense() {
    passes("What are the drawbacks of remote work?", "What are the downsides of working from home?");
    passes(
        "How do I free up disk space on a Linux server?",
        "The disk on my Linux machine is full, how can I clean it up?",
    );
    // still a scope word where it says who or what
    refused("How do I get home insurance?", "How do I get business insurance?", Refusal::Scope);
    refused("Is the museum free?", "Is the museum paid?", Refusal::Scope);
    refused("Can I work from home?", "Can I work?", Refusal::Scope);
}

#[test]
fn general_word_covers_scope_class() {
    passes("Are pets allowed at the hotel?", "Can I stay at the hotel with my dog?");
    passes("Can I bring my pet on the train?", "Are cats allowed on the train?");
    // two classes the general word covers are still two classes
    refused("Are dogs allowed at the hotel?", "Are cats allowed at the hotel?", Refusal::Scope);
    refused("Can I bring my pet on the train?", "Can I bring my dog on the train?", Refusal::Substitution);
}

#[test]
fn scope_phrases_and_hyphenated_class_words() {
    passes(
        "How much water should an adult drink per day?",
        "What's the recommended daily water intake for a grown-up?",
    );
    passes(
        "What is the fee for using my card abroad?",
        "How much do you charge when I pay with my card in another country?",
    );
    passes(
        "¿Cómo puedo hacer una transferencia internacional?",
        "¿Qué pasos debo seguir para enviar dinero a otro país?",
    );
    passes(
        "¿Cuánto equipaje puedo llevar en un vuelo nacional?",
        "¿Qué cantidad de maletas se permite en vuelos domésticos?",
    );
    passes("When is payday this month?", "On what date will salaries be paid this month?");
    // the classes still tell who and where apart
    refused("Can a grown-up take this?", "Can a child take this?", Refusal::Scope);
    refused("Can I use my card in another country?", "Can I use my card in my country?", Refusal::Scope);
    refused("Is the course free?", "Is the course paid?", Refusal::Scope);
}

#[test]
fn light_verbs_with_the_same_object_pass() {
    passes("How do I make a claim on my home insurance?", "How do I submit a claim on my home insurance?");
    passes("Can I place an order by phone?", "Can I make an order by phone?");
    passes("Comment faire une réclamation ?", "Comment déposer une réclamation ?");
    passes("Wie kann ich einen Antrag stellen?", "Wie kann ich einen Antrag einreichen?");
    // other verbs, or another object, are another question
    refused("How do I make a claim?", "How do I cancel a claim?", Refusal::Scope);
    refused("How do I make a claim?", "How do I submit a complaint?", Refusal::Substitution);
}

#[test]
fn copulas_pass() {
    passes("How long is the course application window open?", "How long does the course application window stay open?");
    passes("¿Cuánto tiempo está abierta la tienda?", "¿Cuánto tiempo permanece abierta la tienda?");
    passes("Combien de temps le magasin est ouvert ?", "Combien de temps le magasin reste ouvert ?");
    // another verb is another question
    refused("How long is the window open?", "How long does the window close?", Refusal::Contrast);
}

#[test]
fn common_synonyms_pass_but_keep_their_opposites() {
    passes("Can I take a stroller on the plane?", "Can I take a pushchair on the aircraft?");
    passes("Why do I feel tired after the vaccine?", "Why do I feel exhausted after the vaccine?");
    passes("How do I lower my overdraft limit?", "How do I reduce my overdraft limit?");
    passes("Can I get an invoice for my order?", "Can I get a bill for my order?");
    refused("How do I lower my overdraft limit?", "How do I raise my overdraft limit?", Refusal::Contrast);
    refused("How do I reduce my overdraft limit?", "How do I increase my overdraft limit?", Refusal::Contrast);
}

#[test]
fn home_as_a_place_and_acronym_words() {
    passes(
        "What happens if I'm not home when the courier comes?",
        "If nobody is in when the package is delivered, what will happen?",
    );
    passes(
        "How do I see the CPU usage of each process on Linux?",
        "How do I see the processor usage of each process on Linux?",
    );
    refused("How do I get home insurance?", "How do I get travel insurance?", Refusal::Substitution);
    refused("How do I see the CPU usage on Linux?", "How do I see the GPU usage on Linux?", Refusal::Entity);
}

#[test]
fn short_forms_keep_related_names_apart() {
    refused("Do I need a visa for Niger?", "Do I need a visa for Nigeria?", Refusal::Entity);
    refused("What is the capital of India?", "What is the capital of Indiana?", Refusal::Entity);
    refused("How do I add a button in Swift?", "How do I add a button in SwiftUI?", Refusal::Entity);
}

#[test]
fn country_names_are_not_currencies() {
    // The stemmer folds "France" to "franc"; currencies are matched on the word as written.
    refused("What is the capital of France?", "What is the capital of Germany?", Refusal::Entity);
    refused("Convert 50 francs to euros", "Convert 50 dollars to euros", Refusal::Unit);
    passes("Convert 50 CHF to EUR", "convert 50 francs to euros");
}
