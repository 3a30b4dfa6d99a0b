"""Synthetic people, photos and an image-caption corpus, drawn offline with PIL + NumPy.

Why: the identity inference attack needs people whose membership in a training set is known
exactly. Real photo sets cannot be redistributed and no pretrained weights are available
here, so idia draws its own people. Each identity has stable traits (head shape, skin, hair,
eyes, brows, nose, mouth, ears, glasses, beard, marks, age: :mod:`.traits`,
:mod:`.identities`); each photo adds strong nuisance (pose, scale, position, lighting,
expression, background, blur, noise, occasional hats, sunglasses, hands: :mod:`.conditions`),
drawn part by part (:mod:`.faces`) and described by attribute captions (:mod:`.captions`).
Objects (:mod:`.objects`) fill the rest of a background corpus (:mod:`.corpus`); named people
are written as people folders (:mod:`.folders`). For the lab's controls, people can be drawn in
demographic groups with their own traits and names (:mod:`.groups`), and the corpus can name
namesakes of the people under test (:mod:`.namesakes`).

Every random choice comes from an explicit seed: an identity from ``(seed, index)``, a photo
from ``(identity seed, photo index)``. The same inputs always give the same pixels.

Used by the lab (:mod:`idia.lab`) and by erasure (:mod:`idia.unlearn`); it imports neither.
"""

from idia.synthetic.captions import describe_photo
from idia.synthetic.conditions import PhotoConditions, photo_conditions, sample_conditions
from idia.synthetic.corpus import (
    CorpusRecord,
    background_corpus,
    default_workers,
    render_record,
    write_corpus,
)
from idia.synthetic.drawing import DEFAULT_SIZE, NAMED_COLOURS
from idia.synthetic.faces import render_face
from idia.synthetic.folders import write_people_folder, write_people_table
from idia.synthetic.groups import (
    GROUP_FIRST_NAMES,
    GROUP_SURNAMES,
    GROUPS,
    group_name_pools,
    grouped_people,
)
from idia.synthetic.identities import (
    Identity,
    hypernym,
    lookalike,
    make_identities,
    make_identity,
    named_people,
    people_rows,
)
from idia.synthetic.namesakes import NAME_PART_KINDS, Namesake, make_namesakes, name_parts
from idia.synthetic.objects import (
    SHAPES,
    ObjectScene,
    describe_object,
    make_object_scene,
    render_object,
)
from idia.synthetic.traits import (
    BEARDS,
    EYE_COLOURS,
    GENDERS,
    GLASSES,
    HAIR_COLOURS,
    HAIR_STYLES,
    POPULATION,
    SEX_OF_GENDER,
    SKIN_TONES,
    FaceTraits,
    TraitProfile,
    sample_traits,
)

__all__ = [
    "BEARDS",
    "DEFAULT_SIZE",
    "EYE_COLOURS",
    "GENDERS",
    "GLASSES",
    "GROUPS",
    "GROUP_FIRST_NAMES",
    "GROUP_SURNAMES",
    "HAIR_COLOURS",
    "HAIR_STYLES",
    "NAMED_COLOURS",
    "NAME_PART_KINDS",
    "POPULATION",
    "SEX_OF_GENDER",
    "SHAPES",
    "SKIN_TONES",
    "CorpusRecord",
    "FaceTraits",
    "Identity",
    "Namesake",
    "ObjectScene",
    "PhotoConditions",
    "TraitProfile",
    "background_corpus",
    "default_workers",
    "describe_object",
    "describe_photo",
    "group_name_pools",
    "grouped_people",
    "hypernym",
    "lookalike",
    "make_identities",
    "make_identity",
    "make_namesakes",
    "make_object_scene",
    "name_parts",
    "named_people",
    "people_rows",
    "photo_conditions",
    "render_face",
    "render_object",
    "render_record",
    "sample_conditions",
    "sample_traits",
    "write_corpus",
    "write_people_folder",
    "write_people_table",
]
