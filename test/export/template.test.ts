/**
 * The exported chat templates: the shipped ones with `{% generation %}` markers around exactly the
 * tokens rlhf-kit's label mask trains (src/tokenizer/dialogue.ts), and nothing else changed.
 */
import { GENERATION_END, GENERATION_START, markGeneration, withoutGenerationMarkers } from '../../src/export/template.js';
import { packagePath } from '../../src/paths.js';
import { IGNORE_INDEX, loadTokenizer, tokenizeDialogue } from '../../src/tokenizer/index.js';
import { CHATML_CHAT_TEMPLATE, LLAMA2_CHAT_TEMPLATE, renderTemplate } from '../../src/tokenizer/templates.js';

const dialogue = [
  { role: 'system', content: 'Answer like a pirate.' },
  { role: 'user', content: 'What is 2 and 3?' },
  { role: 'assistant', content: 'Arr, 5.' },
  { role: 'user', content: 'And 4 and 4?' },
  { role: 'assistant', content: ' Arr, 8. ' },
];

/** The texts inside the generation markers, found by rendering them as sentinels. */
function generationSpans(template: string, vars: { bosToken: string; eosToken: string }): string[] {
  const sentinels = template.split(GENERATION_START).join("{{ '\u0001' }}").split(GENERATION_END).join("{{ '\u0002' }}");
  const text = renderTemplate(sentinels, dialogue as never, { ...vars, addGenerationPrompt: false });
  return [...text.matchAll(/\u0001([^\u0002]*)\u0002/g)].map((m) => m[1]!);
}

test('without its markers the exported template renders exactly as the shipped one (Llama 2: the same text)', () => {
  const vars = { bosToken: '<s>', eosToken: '</s>', addGenerationPrompt: true };
  for (const t of [LLAMA2_CHAT_TEMPLATE, CHATML_CHAT_TEMPLATE]) {
    const marked = markGeneration(t, 'tokenizer.template');
    expect(marked).not.toBe(t);
    expect(marked.split(GENERATION_START).length - 1).toBe(1);
    expect(renderTemplate(withoutGenerationMarkers(marked), dialogue.slice(1) as never, vars)).toBe(renderTemplate(t, dialogue.slice(1) as never, vars));
    expect(markGeneration(marked, 'x')).toBe(marked); // already marked: kept
  }
  expect(withoutGenerationMarkers(markGeneration(LLAMA2_CHAT_TEMPLATE, 'x'))).toBe(LLAMA2_CHAT_TEMPLATE);
});

test('ChatML: the markers hold each answer and its <|im_end|>, not the newline after it (hand-written)', () => {
  expect(generationSpans(markGeneration(CHATML_CHAT_TEMPLATE, 'x'), { bosToken: '<s>', eosToken: '</s>' })).toEqual(['Arr, 5.<|im_end|>', ' Arr, 8. <|im_end|>']);
});

test("Llama 2 on the world tokenizer: the marked text is exactly the text of the tokens rlhf-kit's label mask trains", async () => {
  const tokenizer = await loadTokenizer(packagePath('data', 'world', 'base'));
  const marked = markGeneration(tokenizer.chatTemplate!, 'tokenizer.template');
  const spans = generationSpans(marked, { bosToken: tokenizer.decode([tokenizer.bosId]), eosToken: tokenizer.decode([tokenizer.eosId]) });
  const { inputIds, labels } = tokenizeDialogue(tokenizer, dialogue as never, { template: 'tokenizer', strategy: 'train_on_assistant' });
  const runs: number[][] = [];
  labels.forEach((l, i) => {
    if (l === IGNORE_INDEX) return;
    if (i === 0 || labels[i - 1] === IGNORE_INDEX) runs.push([]);
    runs[runs.length - 1]!.push(inputIds[i]!);
  });
  expect(spans).toEqual([' Arr, 5. </s>', ' Arr, 8. </s>']);
  expect(runs.map((ids) => tokenizer.decode(ids, { skipSpecialTokens: false }))).toEqual(spans);
});

test('a template rlhf-kit does not know is refused rather than trained on every token', () => {
  expect(() => markGeneration('{% for m in messages %}{{ m.content }}{% endfor %}', 'configs/x.yaml: tokenizer.template')).toThrow(
    "configs/x.yaml: tokenizer.template: this chat template has no {% generation %} markers and is not one rlhf-kit knows",
  );
});
