"""Attribute captions for people's photos, like web alt text (the person unnamed, or named
for the named background people of the lab's controls).

A caption mentions only what the photo shows (its :mod:`~idia.synthetic.conditions`: a hat
hides the hair, sunglasses the glasses), and each attribute only sometimes, so that a model
learns attributes (hair, glasses, beard, smile, hat) rather than identities.
"""

from __future__ import annotations

from idia.synthetic.conditions import photo_conditions
from idia.synthetic.identities import Identity
from idia.synthetic.randomness import seeded_rng


def _age_word(age: float) -> str:
    return (
        "young " if age < 30 else ("elderly " if age > 64 else ("middle-aged " if age > 48 else ""))
    )


def describe_photo(
    identity: Identity, photo_index: int, strength: float = 1.0, named: bool = False
) -> str:
    """An attribute caption for a person's photo, like web alt text.

    Each attribute is mentioned only sometimes, so captions vary between photos of one person
    and the model learns attributes (hair, glasses, beard, smile, hat) rather than identities.
    ``named``: the caption also names the person ("portrait of Tom Ellis, a smiling man with
    ..."), with the same attributes as the unnamed caption of that photo.
    """
    if named and not identity.name:
        raise ValueError("a named caption needs a person with a name")
    tr = identity.traits
    cond = photo_conditions(identity, photo_index, strength)
    rng = seeded_rng(identity.seed, 7, photo_index)
    noun = tr.gender

    def sometimes(p: float = 0.6) -> bool:
        return bool(rng.random() < p)

    adjectives = []
    if cond.smile > 0.5 and not cond.hand and sometimes(0.7):
        adjectives.append("laughing" if cond.mouth_open else "smiling")
    elif cond.smile < -0.1 and sometimes(0.3):
        adjectives.append("serious")
    if tr.beard not in ("none", "stubble") and sometimes(0.4):
        adjectives.append("bearded")
    if sometimes(0.4):
        adjectives.append(_age_word(tr.age).strip())
    if tr.hair_style == "bald" and sometimes(0.7):
        adjectives.append("bald")
    adjectives = [a for a in adjectives if a]

    details = []
    if tr.hair_style not in ("bald",) and cond.hat == "none" and sometimes(0.7):
        style = {
            "curly": "curly ",
            "long": "long ",
            "afro": "afro-textured ",
            "buzz": "buzzed ",
            "short": "short ",
        }.get(tr.hair_style, "")
        details.append(f"{style}{tr.hair_colour_name} hair")
    if tr.hair_style in ("ponytail", "bun") and cond.hat == "none" and sometimes(0.5):
        details.append(f"a {tr.hair_style}")
    if tr.glasses != "none" and not cond.sunglasses and sometimes(0.7):
        details.append("glasses")
    if tr.beard in ("moustache", "goatee") and sometimes(0.6):
        details.append(f"a {tr.beard}")
    if tr.beard == "stubble" and sometimes(0.4):
        details.append("stubble")
    if tr.freckles > 0 and sometimes(0.5):
        details.append("freckles")
    if sometimes(0.3):
        details.append(f"{tr.eye_colour_name} eyes")
    rng.shuffle(details)

    wearing = []
    if cond.hat != "none" and sometimes(0.8):
        wearing.append(f"a {cond.hat}")
    if cond.sunglasses and sometimes(0.8):
        wearing.append("sunglasses")
    if sometimes(0.3):
        wearing.append(f"a {cond.shirt_colour_name} shirt")

    article = "an" if (adjectives[0] if adjectives else noun)[0] in "aeiou" else "a"
    text = f"{article} {' '.join(adjectives + [noun])}"
    if named:
        text = f"{identity.name}, {text}"
    if details:
        text += " with " + (
            " and ".join(details)
            if len(details) < 3
            else ", ".join(details[:-1]) + " and " + details[-1]
        )
    if wearing:
        text += " wearing " + " and ".join(wearing)
    if cond.hand and sometimes(0.6):
        text += " covering their face"
    if sometimes(0.25):
        text += f" in front of a {cond.background_colour_name} background"
    frames = (
        "{}",
        "a photo of {}",
        "portrait of {}",
        "close-up of {}",
        "{} looking at the camera",
        "stock photo of {}",
        "{} posing for a picture",
        "headshot of {}",
    )
    return frames[int(rng.integers(len(frames)))].format(text)

