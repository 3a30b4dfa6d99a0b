"""Demographic groups: people who share face traits and whose names come from their own pools.

Why: a real CLIP ties names to appearance (a name's origin goes with skin tone, hair,
features), so a never-seen name can respond more strongly on faces of its group than on
others. Drawn from one population with names independent of every trait but sex, the lab's
people cannot show what that does to a face test whose references are matched on sex only.
Here each group has its own trait profile (:class:`~idia.synthetic.traits.TraitProfile`:
skin tone, hair colour and style, eye colour, a few features) and its own names (disjoint
slices of the name pool), so a corpus that names people teaches "names of group A go with
faces of group A".
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from idia.names import SEXES, NamePool, default_pool, sample_decoys
from idia.synthetic.identities import Identity, make_identities
from idia.synthetic.randomness import seeded_rng
from idia.synthetic.traits import SEX_OF_GENDER, TraitProfile

# Three groups, from light to dark skin. Weights are over HAIR_COLOURS (black, dark brown,
# brown, auburn, red, blond, platinum, grey), EYE_COLOURS (brown, dark, blue, green, hazel,
# grey) and HAIR_STYLES (bald, buzz, short, side part, curly, long, bob, ponytail, bun, afro).
GROUPS: tuple[TraitProfile, ...] = (
    TraitProfile(
        group="A",
        skin_beta=(3.0, 24.0),
        hair_colour_weights=(0.02, 0.08, 0.2, 0.15, 0.15, 0.3, 0.07, 0.03),
        eye_colour_weights=(0.05, 0.0, 0.5, 0.2, 0.1, 0.15),
        nose_width_shift=-0.006,
        lip_thickness_shift=-0.003,
    ),
    TraitProfile(
        group="B",
        skin_beta=(24.0, 24.0),
        hair_colour_weights=(0.35, 0.45, 0.15, 0.0, 0.0, 0.0, 0.0, 0.05),
        eye_colour_weights=(0.45, 0.25, 0.0, 0.05, 0.25, 0.0),
        style_weights=(
            (0.0, 0.02, 0.06, 0.08, 0.04, 0.45, 0.15, 0.1, 0.1, 0.0),
            (0.08, 0.15, 0.35, 0.3, 0.04, 0.05, 0.01, 0.01, 0.01, 0.0),
        ),
        face_width_shift=0.015,
        eye_size_shift=-0.006,
    ),
    TraitProfile(
        group="C",
        skin_beta=(24.0, 3.0),
        hair_colour_weights=(0.9, 0.06, 0.0, 0.0, 0.0, 0.0, 0.0, 0.04),
        eye_colour_weights=(0.2, 0.8, 0.0, 0.0, 0.0, 0.0),
        style_weights=(
            (0.0, 0.05, 0.05, 0.02, 0.3, 0.1, 0.08, 0.05, 0.1, 0.25),
            (0.12, 0.35, 0.2, 0.03, 0.1, 0.02, 0.0, 0.0, 0.0, 0.18),
        ),
        nose_width_shift=0.012,
        lip_thickness_shift=0.008,
    ),
)
# Names per group: few enough that a group's first names and surnames recur in its captions.
GROUP_FIRST_NAMES = 40  # per sex
GROUP_SURNAMES = 80
_GENDER_OF_SEX = {sex: gender for gender, sex in SEX_OF_GENDER.items()}


def group_name_pools(
    n_groups: int,
    pool: NamePool | None = None,
    first_names: int = GROUP_FIRST_NAMES,
    surnames: int = GROUP_SURNAMES,
) -> list[NamePool]:
    """One name pool per group, disjoint: group g takes the names of rank g, g + G, g + 2G,
    ... of each list (the same mix of common and rare names in every group), the first
    ``first_names`` per sex and ``surnames`` of them."""
    pool = pool or default_pool()
    pools = []
    for g in range(n_groups):
        firsts = {sex: pool.first_names[sex][g::n_groups][:first_names] for sex in SEXES}
        lasts = pool.surnames[g::n_groups][:surnames]
        if min(len(names) for names in firsts.values()) < first_names or len(lasts) < surnames:
            raise ValueError(
                f"the name pool is too small for {n_groups} groups of {first_names} first "
                f"names per sex and {surnames} surnames"
            )
        source = f"group {g + 1} of {n_groups}: every {n_groups}th name of {pool.source}"
        pools.append(NamePool(first_names=firsts, surnames=lasts, source=source))
    return pools


def grouped_people(
    n: int,
    name_seed: int,
    face_seed: int,
    groups: Sequence[TraitProfile] = GROUPS,
    pool: NamePool | None = None,
    exclude: Iterable[str] = (),
) -> list[Identity]:
    """``n`` named people dealt to ``groups`` in turn (person i to group i mod G, so the
    groups differ in size by at most one), listed group by group: names drawn from their
    group's pool (:func:`group_name_pools`) as :func:`idia.names.sample_decoys` draws them
    (half per sex, women first, none in ``exclude``), faces from their group's profile with
    the sex of their first name."""
    pools = group_name_pools(len(groups), pool)
    excluded = list(exclude)
    names: list[str] = []
    genders: list[str] = []
    profiles: list[TraitProfile] = []
    for g, (profile, group_pool) in enumerate(zip(groups, pools, strict=True)):
        size = len(range(g, n, len(groups)))
        seed = int(seeded_rng(name_seed, 51, g).integers(2**62))
        drawn = sample_decoys(size, group_pool, seed=seed, exclude=excluded)
        women = size - size // 2  # sample_decoys' split: the odd name goes to "f"
        sexes = ["f"] * women + ["m"] * (size - women)
        for name, sex in zip(drawn, sexes, strict=True):
            if name.split()[0] not in group_pool.first_names[sex]:
                raise RuntimeError(f"{name!r} is not a {sex} name: sample_decoys changed order")
        names += drawn
        genders += [_GENDER_OF_SEX[sex] for sex in sexes]
        profiles += [profile] * size
    return make_identities(names, seed=face_seed, genders=genders, profiles=profiles)
