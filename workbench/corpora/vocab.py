"""The curated child vocabulary the story generator draws from (about 1,500 words a young child knows).

Here: word lists by category (names, animals, things, foods, places, adjectives, verbs with past forms),
`plural()` and `article()`. Every word a generated story can contain is in `all_words()`.
Not here: the sentence patterns (`workbench.corpora.stories`).
"""
from __future__ import annotations

import functools


def _words(s: str) -> tuple[str, ...]:
    """Split a word list on commas (entries may hold spaces: "ice cream"), keeping order, dropping repeats."""
    out = []
    for w in s.replace("\n", " ").split(","):
        w = " ".join(w.split())
        if w and w not in out:
            out.append(w)
    return tuple(out)


GIRL_NAMES = _words("""Lily, Mia, Sue, Anna, Emma, Lucy, Ella, Zoe, Amy, Kate, Rosa, Nina, Lola, Ruby, Daisy, Molly,
Sophie, Grace, Chloe, Hannah, Sara, Maya, Lena, Alice, Ivy, Jane, Julia, Clara, Eva, Ada, Nora, Hazel, Poppy, Rose,
Bella, Stella, Luna, Olive, Maria, Wendy, Holly, Megan, Tina, Kim, Jill, Beth, Amber, Pearl, Fern, Iris, Mila, Nell,
Tess, Wren, Ada, Elsie, Dora, Kira, Leah, Polly""")
BOY_NAMES = _words("""Tom, Max, Ben, Sam, Tim, Jack, Leo, Finn, Jake, Luke, Noah, Owen, Adam, Dan, Eli, Joe, Kai, Liam,
Milo, Ned, Oscar, Paul, Ravi, Ryan, Theo, Toby, Will, Zack, Alex, Bobby, Carl, Dave, Eric, Fred, Gus, Hugo, Ivan, Jon,
Kevin, Lars, Mark, Nick, Omar, Pete, Rex, Rudy, Sid, Ted, Victor, Wes, Arlo, Bruno, Cody, Dean, Felix, George, Henry,
Jasper, Louis, Otto""")

HERO_KINDS = _words("""girl, boy, bunny, bear, puppy, kitten, mouse, fox, duck, frog, bird, owl, pig, lamb, squirrel,
hedgehog, turtle, penguin, monkey, dragon""")       # "a little {kind} named {hero}"; girl/boy follow the name
ANIMALS = _words("""dog, cat, bird, fish, cow, horse, pig, sheep, goat, duck, hen, chick, rabbit, bunny, mouse, rat,
frog, toad, snake, turtle, bear, lion, tiger, elephant, monkey, giraffe, zebra, hippo, fox, wolf, deer, owl, bee, ant,
butterfly, bug, worm, snail, spider, ladybug, squirrel, hedgehog, bat, seal, whale, dolphin, shark, crab, octopus,
penguin, parrot, swan, goose, crow, robin, eagle, kangaroo, koala, panda, camel, donkey, pony, puppy, kitten, lamb,
calf, beaver, otter, raccoon, moose, mole, badger, skunk, crocodile, dinosaur, dragon, unicorn, chicken, turkey,
peacock, flamingo, pelican, gorilla, cheetah, leopard, rhino, llama, ostrich, lizard, jellyfish, starfish, seahorse,
goldfish, caterpillar, beetle, firefly, grasshopper, dragonfly, moth, puffin, hamster, piglet, duckling""")
THINGS = _words("""ball, kite, doll, teddy bear, hat, book, box, cup, drum, bike, boat, car, train, truck, plane,
block, puzzle, crayon, pencil, brush, shoe, sock, mitten, scarf, coat, bag, basket, bucket, spoon, bowl, plate, bell,
whistle, flute, horn, robot, rocket, wagon, sled, shovel, rope, key, clock, lamp, pillow, blanket, balloon, ribbon,
button, marble, shell, stone, feather, leaf, flower, stick, map, letter, card, picture, paint, toy, game, yo-yo, top,
jar, bottle, umbrella, ring, necklace, crown, wand, mask, cape, tent, ladder, hammer, bead, sticker, stamp, coin, gift,
present, jump rope, swing, slide, sandcastle, snowman, kazoo, piano, guitar, violin, xylophone, camera, watch, glove,
boot, helmet, backpack, lunchbox, notebook, sticker book, storybook, comb, mirror, towel, soap, toothbrush, bathtub,
rubber duck, puppet, spinning top, kitten toy, toy car, toy train, toy boat, paper boat, paper plane, magnet, flashlight,
candle, lantern, compass, telescope, net, fishing rod, pail, watering can, seed, pot, vase, cushion, chair, table,
bed, rug, door, window, gate, fence, bench, wheel, scooter, skateboard, trumpet, tambourine, harmonica, rattle,
bubble wand, chalk, glue, scissors, tape, paper, string, yarn, blocks, beach ball, frisbee, hula hoop, pinwheel,
music box, treasure box, jewel, crystal, acorn, pine cone, nest, egg, apron, belt, bracelet, hairbrush, hair clip,
slipper, sweater, jacket, dress, shirt, skirt, raincoat, sun hat, swimsuit, goggles, bandage, spade""")
FOODS = _words("""apple, banana, orange, pear, peach, plum, grape, cherry, berry, strawberry, blueberry, lemon, melon,
watermelon, mango, kiwi, carrot, pea, bean, corn, potato, tomato, cucumber, pumpkin, onion, bread, toast, bun, roll,
muffin, cake, cookie, pie, tart, pancake, waffle, cupcake, donut, cracker, pretzel, sandwich, soup, rice, noodle,
pasta, pizza, egg, cheese, butter, jam, honey, milk, juice, yogurt, ice cream, candy, lollipop, chocolate, popcorn,
nut, peanut, cereal, oatmeal, salad, sausage, meatball, fish stick, taco, burrito, dumpling, pudding, jelly, gummy bear,
marshmallow, cinnamon roll, biscuit, bagel, cornbread, fruit salad, lemonade, cocoa, tea, smoothie, popsicle, cheese
stick, grilled cheese, apple pie, carrot cake, banana bread, berry pie, pumpkin pie, cherry tart, peach jam, rice cake,
sweet potato, broccoli, lettuce, spinach, celery, radish, beet, zucchini, avocado, coconut, pineapple, apricot, fig,
date, raisin, walnut, almond, hazelnut, oat cake, honey cake, fudge, toffee, caramel, cotton candy""")
PLACES = _words("""park, beach, farm, forest, garden, zoo, lake, river, pond, hill, mountain, meadow, field, woods,
school, library, market, shop, store, bakery, playground, yard, backyard, house, kitchen, bedroom, attic, barn,
castle, cave, island, town, city, village, street, road, bridge, station, harbor, museum, circus, fair, pool, camp,
jungle, desert, valley, orchard, nest, tree house, sandbox, swamp, shore, cliff, waterfall, playroom, classroom,
treehouse, hospital, post office, toy shop, candy shop, flower shop, pet shop, ice rink, snow hill, sand dune, rose
garden, vegetable garden, duck pond, old mill, lighthouse, tower, palace, bus stop, train station, fire station,
farmhouse, cottage, cabin, igloo, tent, boat house, bridge, square, fountain, picnic spot, sunflower field, apple
orchard, berry bush, big oak, pine forest, green valley, blue lake, quiet beach, sunny hill, secret garden, little
island, old barn, tall tower, busy market, dark cave, deep woods, wide river, small pond, muddy field, rocky shore""")
SPOTS = _words("""bed, table, chair, couch, sofa, rug, tree, bush, rock, log, bench, box, basket, blanket, pillow,
stairs, door, car, slide, swing, bridge, fence, leaves, sand, flower pot, cupboard, shelf, desk, wagon, tent""")
PARENTS = _words("""mom, dad, grandma, grandpa, aunt, uncle, sister, brother, teacher, neighbor""")
TIMES = _words("""morning, afternoon, evening, day, night, spring day, summer day, winter day, rainy day, snowy day,
windy day, sunny morning, warm evening, cold morning, Saturday, Sunday""")
WEATHER = _words("""sunny, warm, cold, windy, rainy, snowy, cloudy, bright, foggy, hot, cool, wet, stormy, quiet, calm""")

COLORS = _words("""red, blue, green, yellow, pink, purple, orange, brown, black, white, gray, gold, silver""")
SIZES = _words("""big, little, small, tiny, huge, tall, fat, giant, young, old, chubby, skinny""")
OBJ_ADJS = _words("""shiny, soft, hard, new, old, pretty, funny, special, favorite, fluffy, smooth, bumpy, sparkly,
striped, spotted, fuzzy, squeaky, bouncy, warm, cold, clean, dirty, wet, dry, sticky, bright, dark, colorful, strong,
fast, slow, magic, lucky, noisy, quiet, happy, silly, fancy, plain, wooden, paper, glass, plastic, wool, cozy, tidy,
messy, sweet, sour, crunchy, yummy, tasty, fresh, juicy, golden, tiny, perfect, lovely, broken, empty, full,
short, long, round, thin, wide, heavy, light""")
HERO_ADJS = _words("""little, kind, brave, happy, curious, shy, clever, funny, busy, gentle, friendly, cheerful, small,
young, smart, sweet, playful, quiet, silly, careful, strong, bold, lively, polite, helpful, tiny, proud""")
PLACE_ADJS = _words("""big, small, green, quiet, busy, sunny, shady, pretty, old, new, warm, cool, happy, bright,
lovely, muddy, windy, peaceful, noisy, wild, open""")

# Activities a character likes: (base form, past form). "liked to {act}", "{he} {act_past} all day".
ACTIVITIES = (
    ("play", "played"), ("run", "ran"), ("jump", "jumped"), ("sing", "sang"), ("dance", "danced"),
    ("draw", "drew"), ("read", "read"), ("swim", "swam"), ("climb", "climbed"), ("paint", "painted"),
    ("skip", "skipped"), ("hop", "hopped"), ("bake", "baked"), ("build", "built"), ("dig", "dug"),
    ("fly", "flew"), ("laugh", "laughed"), ("explore", "explored"), ("walk", "walked"), ("ride", "rode"),
    ("roll", "rolled"), ("spin", "spun"), ("swing", "swung"), ("slide", "slid"), ("splash", "splashed"),
    ("whistle", "whistled"), ("hum", "hummed"), ("clap", "clapped"), ("skate", "skated"), ("sled", "sledded"),
    ("count", "counted"), ("write", "wrote"), ("cook", "cooked"), ("garden", "gardened"), ("fish", "fished"),
    ("camp", "camped"), ("march", "marched"), ("wiggle", "wiggled"), ("giggle", "giggled"), ("twirl", "twirled"),
    ("stretch", "stretched"), ("nap", "napped"), ("rest", "rested"), ("learn", "learned"), ("listen", "listened"),
    ("color", "colored"), ("sew", "sewed"), ("knit", "knitted"), ("kick", "kicked"), ("throw", "threw"),
    ("catch", "caught"), ("race", "raced"), ("crawl", "crawled"), ("bounce", "bounced"), ("float", "floated"),
    ("drum", "drummed"), ("wave", "waved"), ("smile", "smiled"), ("hide", "hid"), ("search", "searched"),
)
# Actions on an object: (base, past). "{he} {act_obj_past} the {thing}".
OBJ_ACTIONS = (
    ("hold", "held"), ("carry", "carried"), ("hug", "hugged"), ("clean", "cleaned"), ("wash", "washed"),
    ("shake", "shook"), ("lift", "lifted"), ("push", "pushed"), ("pull", "pulled"), ("touch", "touched"),
    ("paint", "painted"), ("fix", "fixed"), ("show", "showed"), ("share", "shared"), ("drop", "dropped"),
    ("throw", "threw"), ("kick", "kicked"), ("pat", "patted"), ("wrap", "wrapped"), ("open", "opened"),
    ("close", "closed"), ("fold", "folded"), ("fill", "filled"), ("polish", "polished"), ("check", "checked"),
    ("spin", "spun"), ("roll", "rolled"), ("squeeze", "squeezed"), ("count", "counted"), ("draw", "drew"),
)
# Ways to move to a place: (base, past). "{hero} {move_past} to the {place}".
MOVES = (
    ("go", "went"), ("walk", "walked"), ("run", "ran"), ("skip", "skipped"), ("hop", "hopped"), ("ride", "rode"),
    ("march", "marched"), ("hurry", "hurried"), ("race", "raced"), ("wander", "wandered"), ("dash", "dashed"),
    ("stroll", "strolled"), ("rush", "rushed"), ("jog", "jogged"), ("tiptoe", "tiptoed"), ("zoom", "zoomed"),
)
# Sounds and things animals do: past forms only. "The {animal} {animal_act}."
ANIMAL_ACTS = _words("""barked, purred, chirped, sang, buzzed, quacked, mooed, hooted, hopped, squeaked, croaked,
flew away, ran away, fell asleep, looked up, wagged its tail, jumped high, sat still, ate a leaf, splashed, rolled over,
hid, waved, smiled, danced, yawned, sniffed the air, came close, walked by, swam past""")

FEELINGS = {   # label -> words a reader maps to it
    "happy": ("happy", "glad", "cheerful", "joyful"),
    "proud": ("proud", "very proud", "so proud", "proud and tall"),
    "sad": ("sad", "unhappy", "upset", "gloomy"),
    "scared": ("scared", "afraid", "frightened", "worried"),
    "angry": ("angry", "mad", "cross", "grumpy"),
}

# Label words of the v2 story sentences: several phrasings per class, of unequal length, so that a scoring
# function's length normalisation and verbalizer aggregation have something to act on.
TOPIC_PHRASES = {   # "This was a story about {about}."
    "lost": ("something lost", "a lost thing", "losing something"),
    "friends": ("friends", "sharing", "two friends who learn to share"),
    "adventure": ("an adventure", "exploring", "a long trip far away"),
    "helping": ("helping", "helping an animal", "a kind deed"),
    "baking": ("baking", "making food", "cooking in the kitchen"),
}
ENDING_WORDS = {    # "It was a {endw} ending."
    "good": ("happy", "good", "very happy"),
    "bad": ("sad", "bad", "very sad"),
}
LANGUAGE_NAMES = {"en": "English", "vel": "Velo", "kor": "Korru", "tuu": "Tuuli"}   # "... a story in {language}."

IRREGULAR_PLURALS = {"mouse": "mice", "sheep": "sheep", "fish": "fish", "goose": "geese", "deer": "deer",
                     "moose": "moose", "scissors": "scissors", "blocks": "blocks", "leaves": "leaves",
                     "paint": "paints", "octopus": "octopuses", "calf": "calves", "leaf": "leaves",
                     "wolf": "wolves", "knife": "knives"}


def plural(noun: str) -> str:
    """English plural of a (possibly multi-word) noun: the last word inflects.
    >>> [plural(w) for w in ("cat", "box", "bunny", "mouse", "teddy bear")]
    ['cats', 'boxes', 'bunnies', 'mice', 'teddy bears']
    """
    head, _, last = noun.rpartition(" ")
    if last in IRREGULAR_PLURALS:
        p = IRREGULAR_PLURALS[last]
    elif last.endswith(("s", "x", "ch", "sh", "z")) or last in ("potato", "tomato", "mango"):
        p = last + "es"
    elif last.endswith("y") and last[-2:-1] not in "aeiou":
        p = last[:-1] + "ies"
    else:
        p = last + "s"
    return f"{head} {p}" if head else p


def article(word: str) -> str:
    """'a' or 'an' for the word that follows (by its first letter)."""
    return "an" if word[:1].lower() in "aeiou" and not word.lower().startswith(("uni", "use")) else "a"


def gender(name: str) -> str:
    """'f' or 'm' for a known character name."""
    if name in _GIRLS:
        return "f"
    if name in _BOYS:
        return "m"
    raise KeyError(f"unknown character name {name!r}: use one of vocab.GIRL_NAMES or vocab.BOY_NAMES")


_GIRLS, _BOYS = frozenset(GIRL_NAMES), frozenset(BOY_NAMES)
assert not _GIRLS & _BOYS, _GIRLS & _BOYS


@functools.lru_cache(maxsize=1)
def content_words() -> frozenset[str]:
    """Every single word the slot lists can put into a story (multi-word entries split)."""
    words: set[str] = set()
    lists = [GIRL_NAMES, BOY_NAMES, HERO_KINDS, ANIMALS, THINGS, FOODS, PLACES, SPOTS, PARENTS, TIMES, WEATHER, COLORS,
             SIZES, OBJ_ADJS, HERO_ADJS, PLACE_ADJS, ANIMAL_ACTS, *FEELINGS.values(), *TOPIC_PHRASES.values(),
             *ENDING_WORDS.values(), tuple(LANGUAGE_NAMES.values())]
    for lst in lists:
        for entry in lst:
            words.update(entry.split())
    for pairs in (ACTIVITIES, OBJ_ACTIONS, MOVES):
        for base, past in pairs:
            words.update((base, past))
    for lst in (ANIMALS, THINGS, FOODS):
        for entry in lst:
            words.update(plural(entry).split())
    return frozenset(words)
