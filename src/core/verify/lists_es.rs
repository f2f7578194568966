//! Spanish word lists (same shapes as lists_en.rs). Accents are kept; both accented and plain
//! spellings are listed where users commonly drop them.

pub const STOPWORDS: &[&str] = &[
    "el", "la", "los", "las", "un", "una", "unos", "unas", "de", "del", "al", "a", "en", "y", "o", "u",
    "que", "qué", "como", "cómo", "cuando", "cuándo", "donde", "dónde", "cual", "cuál", "cuales",
    "quien", "quién", "por", "para", "con", "es", "son", "está", "esta", "están", "estar", "ser",
    "hay", "puedo", "puede", "pueden", "poder", "debo", "debe", "tengo", "tiene", "tener", "mi", "mis",
    "tu", "tus", "su", "sus", "nuestro", "nuestra", "yo", "me", "te", "se", "lo", "le", "les", "nos",
    "este", "esta", "estos", "esas", "ese", "eso", "esa", "hacer", "hago", "cuánto", "cuanto", "cuánta",
    "cuántos", "cuantos", "muy", "más", "mas", "también", "sobre", "si", "sí", "ya", "otro",
];
pub const FILLERS: &[&str] = &[
    "hola", "gracias", "favor", "porfa", "buenas", "buenos", "dias", "días", "saludos", "perdón",
    "disculpa", "oye", "pues", "bueno", "vale", "solo", "sólo", "exactamente", "realmente", "saber",
    "decir", "ayuda", "ayudar", "forma", "manera", "posible", "quería", "quiero", "querría",
];
pub const NEGATIONS: &[&str] = &[
    "no", "nunca", "jamás", "jamas", "nada", "nadie", "ninguno", "ninguna", "ningún", "ningun", "sin",
    "tampoco", "ni", "evitar", "prohibir", "prohibido",
];
pub const NEG_CONCORD: &[&str] = &["nada", "nadie", "ninguno", "ninguna", "ningún", "ningun", "nunca", "jamás", "jamas", "tampoco", "ni"];
pub const CONTRASTS: &[(&[&str], &[&str])] = &[
    (&["encender", "activar", "habilitar", "permitir"], &["apagar", "desactivar", "deshabilitar", "prohibir", "bloquear"]),
    (&["abrir", "abierto", "abre"], &["cerrar", "cerrado", "cierra"]),
    (&["comprar", "compra"], &["vender", "venta"]),
    (&["subir", "cargar"], &["bajar", "descargar"]),
    (&["importar"], &["exportar"]),
    (&["aumentar", "subir", "incrementar"], &["disminuir", "reducir", "bajar"]),
    (&["antes"], &["después", "despues"]),
    (&["añadir", "agregar", "incluir"], &["quitar", "eliminar", "borrar", "excluir"]),
    (&["seguro"], &["peligroso"]),
    (&["legal"], &["ilegal"]),
    (&["mínimo", "minimo", "barato"], &["máximo", "maximo", "caro"]),
    (&["primero", "primer", "primera"], &["último", "ultimo", "última", "ultima"]),
    (&["encima", "arriba"], &["debajo", "abajo"]),
    (&["dentro", "entrada"], &["fuera", "salida"]),
    (&["ganar"], &["perder"]),
    (&["aceptar"], &["rechazar"]),
    (&["caliente", "calor"], &["frío", "frio"]),
    (&["mejor"], &["peor"]),
    (&["ventaja", "beneficio"], &["desventaja", "inconveniente"]),
    (&["hombre", "hombres"], &["mujer", "mujeres"]),
    (&["iniciar", "empezar", "comenzar"], &["terminar", "acabar", "parar"]),
    (&["todo", "todos", "todas"], &["alguno", "algunos", "algunas"]),
];
pub const TIME: &[&[&str]] = &[
    &["today", "hoy"], &["tomorrow", "mañana"], &["yesterday", "ayer"], &["tonight", "esta noche"],
    &["monday", "lunes"], &["tuesday", "martes"], &["wednesday", "miércoles", "miercoles"], &["thursday", "jueves"],
    &["friday", "viernes"], &["saturday", "sábado", "sabado"], &["sunday", "domingo"], &["weekend", "finde"],
    &["january", "enero"], &["february", "febrero"], &["march", "marzo"], &["april", "abril"], &["may", "mayo"],
    &["june", "junio"], &["july", "julio"], &["august", "agosto"], &["september", "septiembre"],
    &["october", "octubre"], &["november", "noviembre"], &["december", "diciembre"],
    &["evening", "tarde"], &["night", "noche"], &["summer", "verano"], &["winter", "invierno"],
    &["spring", "primavera"], &["autumn", "otoño"],
];
pub const TIME_MODIFIERS: &[&str] = &["próximo", "proximo", "próxima", "pasado", "pasada", "este", "esta", "siguiente"];
pub const TIME_PERIODS: &[&str] = &["semana", "mes", "año", "ano", "día", "dia"];
pub const SCOPE: &[&[&str]] = &[
    &["child", "niño", "niños", "niña", "niñas", "hijo", "hijos", "hija"],
    &["baby", "bebé", "bebe", "bebés"],
    &["adult", "adulto", "adultos"],
    &["senior", "mayores", "jubilado", "jubilados"],
    &["student", "estudiante", "estudiantes"],
    &["business", "empresa", "empresas", "comercial"],
    &["personal", "particular"],
    &["international", "internacional", "extranjero"],
    &["domestic", "nacional"],
];
pub const NUMBERS: &[(&str, u64)] = &[
    ("cero", 0), ("uno", 1), ("dos", 2), ("tres", 3), ("cuatro", 4), ("cinco", 5), ("seis", 6),
    ("siete", 7), ("ocho", 8), ("nueve", 9), ("diez", 10), ("once", 11), ("doce", 12), ("quince", 15),
    ("veinte", 20), ("treinta", 30), ("cuarenta", 40), ("cincuenta", 50), ("cien", 100), ("ciento", 100),
    ("mil", 1000),
];
pub const CURRENCIES: &[&[&str]] = &[&["usd", "dólar", "dolar", "dólares", "dolares"], &["eur", "euros"], &["gbp", "libra", "libras"], &["chf", "franco", "francos"], &["mxn", "peso", "pesos"]];
pub const DURATIONS: &[&[&str]] = &[
    &["minute", "minuto", "minutos"], &["hour", "hora", "horas"], &["day", "día", "dia", "días", "dias"],
    &["week", "semana", "semanas"], &["month", "mes", "meses"], &["year", "año", "años"],
];
pub const ORDER_MARKERS: &[&str] = &["desde", "hasta", "hacia"];
pub const SYNONYMS: &[&[&str]] = &[
    &["cambiar", "modificar", "actualizar"], &["precio", "coste", "costo", "tarifa"], &["envío", "envio", "entrega"],
    &["comprar", "adquirir"], &["empezar", "comenzar", "iniciar"], &["coche", "carro", "auto", "vehículo"],
    &["contraseña", "clave"], &["cancelar", "anular"], &["pedido", "orden"],
];
