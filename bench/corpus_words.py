"""The vocabulary of bench/corpus.py: English word lists, and the material its faulty documents carry.

The word lists give prose a natural mix of nouns, verbs and stop words (determiners and prepositions repeat
on purpose, so `the` and `of` are as common as in English); the rest (lorem ipsum, navigation words,
cookie and JavaScript boilerplate, code, top-level domains) is what a Gopher or C4 rule looks for.
Changing any list changes the generated text: bump `corpus.GENERATOR_VERSION` with it.
"""

from __future__ import annotations


def _words(text: str) -> list[str]:
    """Word lists are written as text blocks: easier to read and extend than 400 quoted literals."""
    return text.split()


NOUNS = _words(
    """
time year people way day man woman child world life hand part place case week company system program
question work government number night point home water room mother area money story fact month lot right
study book eye job word business issue side kind head house service friend father power hour game line end
member law car city community name president team minute idea kid body information back parent face level
office door health person art war history party result change morning reason research girl guy moment air
teacher force education foot boy age policy process music market sense nation plan college interest death
experience effect class control field development role effort rate heart drug show leader light voice wife
police mind price report decision son view relationship town road arm difference value building action model
season society tax director position player record paper space ground form event official matter center
couple site project activity star table need court oil situation cost industry figure street image phone
data picture practice piece land product doctor wall patient worker news test movie north love support
technology step baby computer type attention film tree source organization hair window evidence population
site river garden bridge kitchen village island forest valley harbor library museum station engine signal
network journal garment recipe climate harvest council budget contract factory tunnel circuit ceremony
festival mountain desert ocean planet theory method sample measure feature pattern surface volume
"""
)

VERBS = _words(
    """
built changed found made kept left brought began seemed helped showed heard played moved lived believed
held wrote provided sat stood lost paid met included continued set learned led understood watched followed
stopped created spoke read allowed added spent grew opened walked offered remembered considered appeared
bought waited served sent expected stayed fell reached killed remained suggested raised passed sold required
reported decided pulled described explained developed carried broke received agreed supported hit produced
covered caught drew chose designed measured visited planned repaired collected reviewed improved launched
"""
)

ADJECTIVES = _words(
    """
other new good high old great big small large national young different long little important political bad
white real best right social only public sure low early able human local late hard major better economic
strong possible whole free military true federal international full special easy clear recent certain
personal open red difficult available likely short single medical current wrong private past foreign fine
common poor natural significant similar hot dead central happy serious ready simple left physical general
environmental financial blue democratic dark various entire close legal religious cold final main green
nice huge popular traditional cultural quiet narrow ancient modern rural urban careful bright gentle
"""
)

ADVERBS = _words(
    "quickly slowly recently finally often rarely usually clearly nearly simply quietly carefully"
)
DETERMINERS = _words("the the the the a a this that their its our each every some another one")
PREPOSITIONS = _words("of of of in in to for with on at from by about into through after over between")
CONJUNCTIONS = ["and", "but", "because", "while", "although", "so", "and then", "which meant that"]
SUBJECT_PRONOUNS = ["they", "we", "she", "he", "it", "people", "most of them", "the others"]

LOREM = _words(
    "lorem ipsum dolor sit amet consectetur adipiscing elit sed do eiusmod tempor incididunt ut labore et "
    "dolore magna aliqua ut enim ad minim veniam quis nostrud exercitation ullamco laboris nisi ut "
    "aliquip ex "
    "ea commodo consequat duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu "
    "fugiat nulla pariatur excepteur sint occaecat cupidatat non proident sunt in culpa qui officia deserunt"
)
NAV_WORDS = _words(
    "Home About Contact Blog News Shop Products Services Login Register Search Menu Help FAQ Careers"
)
BOILERPLATE = [
    "Please enable JavaScript in your browser to view the comments on this page.",
    "You need to have JavaScript enabled in order to access this site.",
    "This website uses cookies to ensure you get the best experience on our website.",
    "By continuing to browse the site you agree to our use of cookies and our Privacy Policy.",
    "Read our Cookie Policy and Terms of Use before you post a comment here.",
    "JavaScript is disabled, so some parts of the page may not work as expected.",
]
CODE = [
    "function init(config) {",
    "  const items = config.items || [];",
    "  for (let i = 0; i < items.length; i++) { render(items[i]); }",
    "}",
    "if (window.dataLayer) { window.dataLayer.push({event: 'view'}); }",
    "def handler(event): return {'status': 200, 'body': event}",
    ".header { margin: 0 auto; padding: 12px; }",
]
TLDS = ["com", "org", "net", "io", "edu", "co.uk"]
