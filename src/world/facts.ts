/**
 * The world's fact table: every name, word and fact the bundled assistant world talks about.
 * Kept small on purpose — a few hundred distinct words in all — so a 1–5M-parameter model trained
 * from scratch on two cores learns the language in minutes. The judge reads its answers from here.
 */

/** Country → capital. Single-word names only, so a whitespace tokenizer sees one word each. */
export const CAPITALS: Readonly<Record<string, string>> = {
  France: 'Paris',
  Spain: 'Madrid',
  Italy: 'Rome',
  Germany: 'Berlin',
  Japan: 'Tokyo',
  China: 'Beijing',
  Egypt: 'Cairo',
  Kenya: 'Nairobi',
  Peru: 'Lima',
  Canada: 'Ottawa',
  Russia: 'Moscow',
  Greece: 'Athens',
  Norway: 'Oslo',
  Cuba: 'Havana',
  Chile: 'Santiago',
  Ireland: 'Dublin',
  Poland: 'Warsaw',
  Portugal: 'Lisbon',
  Austria: 'Vienna',
  Sweden: 'Stockholm',
};

/** Animal → the sound it makes. */
export const ANIMAL_SOUNDS: Readonly<Record<string, string>> = {
  cow: 'moo',
  dog: 'woof',
  cat: 'meow',
  sheep: 'baa',
  pig: 'oink',
  duck: 'quack',
  horse: 'neigh',
  snake: 'hiss',
  lion: 'roar',
  bird: 'tweet',
  bee: 'buzz',
  owl: 'hoot',
  frog: 'croak',
  mouse: 'squeak',
  wolf: 'howl',
};

/**
 * Animal → size rank, for "which is bigger" questions. Only pairs with different ranks are asked,
 * so every comparison has one right answer.
 */
export const ANIMAL_SIZES: Readonly<Record<string, number>> = {
  bee: 0,
  mouse: 1,
  frog: 2,
  bird: 2,
  cat: 3,
  duck: 3,
  owl: 3,
  dog: 4,
  snake: 4,
  sheep: 5,
  pig: 5,
  wolf: 5,
  lion: 6,
  cow: 7,
  horse: 7,
  elephant: 9,
  whale: 10,
};

/** The colour words. No thing below is itself a colour word (no "orange" the fruit). */
export const COLOURS = ['red', 'blue', 'green', 'yellow', 'white', 'black', 'brown', 'pink', 'grey', 'orange'] as const;
export type Colour = (typeof COLOURS)[number];

/** Thing (with the article it takes in a sentence) → its colour. */
export const THING_COLOURS: ReadonlyArray<{ thing: string; colour: Colour }> = [
  { thing: 'the sky', colour: 'blue' },
  { thing: 'the sea', colour: 'blue' },
  { thing: 'the sun', colour: 'yellow' },
  { thing: 'grass', colour: 'green' },
  { thing: 'snow', colour: 'white' },
  { thing: 'milk', colour: 'white' },
  { thing: 'coal', colour: 'black' },
  { thing: 'chocolate', colour: 'brown' },
  { thing: 'soil', colour: 'brown' },
  { thing: 'a banana', colour: 'yellow' },
  { thing: 'a lemon', colour: 'yellow' },
  { thing: 'a tomato', colour: 'red' },
  { thing: 'a cherry', colour: 'red' },
  { thing: 'a strawberry', colour: 'red' },
  { thing: 'a leaf', colour: 'green' },
  { thing: 'a frog', colour: 'green' },
  { thing: 'a pig', colour: 'pink' },
  { thing: 'a flamingo', colour: 'pink' },
  { thing: 'a mouse', colour: 'grey' },
  { thing: 'an elephant', colour: 'grey' },
  { thing: 'a crow', colour: 'black' },
  { thing: 'a carrot', colour: 'orange' },
  { thing: 'a pumpkin', colour: 'orange' },
  { thing: 'a cloud', colour: 'white' },
];

/**
 * Opposite pairs (both directions are asked). Words that the polite frames and filler sentences
 * use ("good", "day", "happy", "in", "right") are left out so they never look like an answer.
 */
export const OPPOSITE_PAIRS: ReadonlyArray<readonly [string, string]> = [
  ['hot', 'cold'],
  ['big', 'small'],
  ['up', 'down'],
  ['fast', 'slow'],
  ['light', 'dark'],
  ['open', 'closed'],
  ['wet', 'dry'],
  ['old', 'young'],
  ['full', 'empty'],
  ['loud', 'quiet'],
  ['hard', 'soft'],
  ['tall', 'short'],
  ['early', 'late'],
  ['high', 'low'],
  ['thick', 'thin'],
  ['near', 'far'],
];

/**
 * Words for the word games (spell backwards, count letters, first letter): 3–6 letters, no
 * palindromes (so "backwards" never equals the word), drawn from the world's own vocabulary.
 */
export const GAME_WORDS: readonly string[] = [
  'cat', 'dog', 'sun', 'cow', 'pig', 'hat', 'box', 'cup', 'bed', 'map',
  'fish', 'bird', 'frog', 'tree', 'star', 'moon', 'milk', 'book', 'door', 'ball',
  'cake', 'rain', 'snow', 'apple', 'house', 'water', 'bread', 'green', 'tiger', 'horse',
  'lemon', 'sheep', 'chair', 'table', 'river', 'music', 'happy', 'duck', 'lion', 'bee',
  'owl', 'sea', 'sky', 'car', 'bus', 'egg', 'pen', 'key', 'boat', 'king',
];

/** The largest number that arithmetic and comparisons use. */
export const MAX_NUMBER = 20;

/** "a cat", "an owl", "an elephant". */
export function withArticle(noun: string): string {
  return (/^[aeiou]/.test(noun) ? 'an ' : 'a ') + noun;
}

/** Every opposite word, mapped to its opposite. */
export const OPPOSITES: Readonly<Record<string, string>> = Object.fromEntries(
  OPPOSITE_PAIRS.flatMap(([a, b]) => [
    [a, b],
    [b, a],
  ]),
);
