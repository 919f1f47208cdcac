import { createHash } from 'node:crypto';

// 256 short, distinct, easy-to-say English words: one word per byte.
const WORDS = `
acid acorn actor adobe agent alarm album alert alley amber angle ankle apple apron arena armor
arrow aspen atlas attic audio autumn avenue bacon badge bagel baker bamboo banjo barley basil
basin beach beacon beard berry bison blade blanket blaze bloom board bonus bottle bramble brick
bridge brook broom bucket buffalo bugle cabin cactus camel canal candle canoe canyon carbon
cargo carpet castle cedar cello chalk cherry chess cider cinema circus citrus clover cobalt
cocoa comet copper coral cotton cougar crater crayon cricket crown crystal cupid cycle dahlia
daisy delta denim desert diesel dinner dolphin donkey dragon drum eagle easel echo eclipse
elbow ember empire engine falcon fable fern ferry fiddle finch flame flint forest fossil fox
fridge frost galaxy garden garlic gazelle geyser ginger glacier globe goblet gopher granite
grape gravel guitar hammer harbor harvest hazel helmet heron hollow honey horizon hornet iceberg
igloo indigo island ivory jacket jaguar jasmine jelly jigsaw jungle kayak kernel kettle kiwi
koala ladder lagoon lantern laser lemon lilac limbo linen lizard lobster locket lotus lumber
magnet mango maple marble meadow melon meteor mimosa mirror mosaic muffin nectar needle nickel
noodle nutmeg oasis ocean octave olive onion opal orbit orchid otter oyster paddle panda
papaya parcel parrot peach pebble pepper piano pickle pigeon pilot pine planet plum pocket
polar poppy potato prism pumpkin puzzle quartz quiver rabbit radar raven reef ribbon river
robin rocket saddle salmon sandal saturn scarf shadow silver sketch sparrow spider spruce
squash stable summit sunset tango teapot thistle tiger timber tomato topaz torch tulip tundra
turtle umbrella valley velvet violet walnut walrus wander willow window winter wizard yogurt
zebra zephyr
`
  .trim()
  .split(/\s+/)
  .slice(0, 256);

/** A short word phrase derived from a token id, read aloud to confirm two people mean one request. */
export function fingerprint(tokenId: string, words = 4): string {
  const h = createHash('sha256').update(`keyturn/fingerprint/v1|${tokenId}`).digest();
  const out: string[] = [];
  for (let i = 0; i < words; i++) out.push(WORDS[h[i]! % WORDS.length]!);
  return out.join('-');
}
export const FINGERPRINT_WORDS = WORDS;
