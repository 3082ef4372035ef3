#!/usr/bin/env python3
"""Every bad input to `angle embed` / `angle eval` ends with exactly one error line on stderr that
names the file (or option) and the problem, a non-zero exit status, and no output file (not even
a temporary one). Model variants are built from the real model by symlinking its files and
corrupting one of them."""
import json
import pathlib
import shutil
import struct
import sys

sys.path.insert(0, str(pathlib.Path(__file__).parent))
from expect import Expectations  # noqa: E402
sys.path.insert(0, str(pathlib.Path(__file__).parents[1] / 'oracle'))
from common import fresh_dir, script_args  # noqa: E402

def model_variant(base, work, name, edit):
    """A copy of the model directory (files symlinked) in which `edit(dir)` breaks something."""
    d = work / name
    shutil.rmtree(d, ignore_errors=True)
    d.mkdir(parents=True)
    for f in base.iterdir():
        (d / f.name).symlink_to(f.resolve())
    edit(d)
    return d


def replace(d, name, data):
    (d / name).unlink()
    (d / name).write_bytes(data) if isinstance(data, bytes) else (d / name).write_text(data)


def main():
    args = script_args(__doc__, '--angle', '--model', '--work')
    angle, base, work = args.angle, pathlib.Path(args.model), fresh_dir(args.work)
    expect = Expectations(angle)
    texts = work / 'texts.txt'
    texts.write_text('A man is playing a guitar.\nA woman is slicing an onion.\n')
    out = work / 'out' / 'emb.npy'
    out.parent.mkdir()
    weights = (base / 'model.safetensors').read_bytes()
    (header_len,) = struct.unpack('<Q', weights[:8])
    config = json.loads((base / 'config.json').read_text())

    def embed(model, inp=texts, extra=()):
        return ['embed', '--model', model, '--input', inp, '--output', out, '--quiet', *extra]

    expect.failure('missing model directory', embed(work / 'nope'), ['nope', 'does not exist'], out)
    # Prompts (model/embedding_file.h): a template without {text}, on the command line or in the model's files.
    expect.failure('--prompt without {text}', embed(base, extra=('--prompt', 'no placeholder')),
                   ["--prompt 'no placeholder' must contain {text}"], out)
    for name, files, message in [
            ('prompt-not-string', {'angle_embedding.json': '{"prompt": 3}'}, ['angle_embedding.json', 'expected {"prompt"']),
            ('prompt-no-slot', {'angle_embedding.json': '{"prompt": "no slot"}'},
             ['angle_embedding.json: prompt', 'must contain {text}']),
            ('st-prompt-missing', {'config_sentence_transformers.json': '{"prompts": {}, "default_prompt_name": "q"}'},
             ['config_sentence_transformers.json', "default_prompt_name 'q' names no prompt"])]:
        def write(d, files=files):
            for f, text in files.items():
                (d / f).unlink(missing_ok=True)
                (d / f).write_text(text)
        expect.failure(f'model prompt file: {name}', embed(model_variant(base, work, name, write)), message, out)
    no_config = model_variant(base, work, 'no-config', lambda d: (d / 'config.json').unlink())
    expect.failure('missing config.json', embed(no_config), ['config.json', 'missing'], out)
    no_weights = model_variant(base, work, 'no-weights', lambda d: (d / 'model.safetensors').unlink())
    expect.failure('missing model.safetensors', embed(no_weights), ['model.safetensors', 'missing'], out)
    no_tok = model_variant(base, work, 'no-tokenizer',
                           lambda d: [(d / n).unlink() for n in ('tokenizer.json', 'vocab.txt')])
    expect.failure('missing tokenizer files', embed(no_tok), ['no-tokenizer', 'no tokenizer.json or vocab.txt'], out)
    truncated = model_variant(base, work, 'truncated', lambda d: replace(d, 'model.safetensors', weights[:len(weights) // 2]))
    expect.failure('truncated safetensors', embed(truncated), ['model.safetensors', 'past the end of the data'], out)
    past_eof = model_variant(base, work, 'header-past-eof',
                             lambda d: replace(d, 'model.safetensors', struct.pack('<Q', len(weights)) + weights[8:]))
    expect.failure('header offset past end of file', embed(past_eof), ['model.safetensors', 'header length',
                                                                     'runs past the end of the file'], out)
    wrong_shape = model_variant(base, work, 'wrong-shape',
                                lambda d: replace(d, 'config.json', json.dumps({**config, 'intermediate_size': 1024})))
    expect.failure('tensor shape disagrees with config.json', embed(wrong_shape),
          ['model.safetensors', 'intermediate.dense.weight', 'has shape [1536, 384]', 'config.json implies [1024, 384]'], out)
    arch = model_variant(base, work, 'unknown-arch',
                         lambda d: replace(d, 'config.json', json.dumps({**config, 'model_type': 'gpt2',
                                                                         'architectures': ['GPT2Model']})))
    expect.failure('unknown architecture', embed(arch), ['config.json', 'unknown architecture', 'gpt2'], out)
    bad_json = model_variant(base, work, 'bad-json', lambda d: replace(d, 'config.json', '{"hidden_size": 384,'))
    expect.failure('config.json not JSON', embed(bad_json), ['config.json', 'invalid JSON'], out)

    empty = work / 'empty.txt'
    empty.write_text('')
    expect.failure('empty input file', embed(base, empty), ['empty.txt', 'file is empty'], out)
    latin1 = work / 'latin1.txt'
    latin1.write_bytes('fine line\ncaf\xe9 au lait\n'.encode('latin-1'))
    expect.failure('non-UTF-8 line', embed(base, latin1), ['latin1.txt:2', 'not valid UTF-8'], out)
    expect.failure('missing input file', embed(base, work / 'absent.txt'), ['absent.txt', 'cannot open'], out)
    expect.failure('max length over the position limit', embed(base, extra=['--max-length', 1024]),
          ['max length 1024', "position limit 512", 'config.json'], out)
    expect.failure('unknown pooling', embed(base, extra=['--pooling', 'median']), ["unknown pooling 'median'"], out)
    expect.failure('unknown dtype', embed(base, extra=['--dtype', 'fp8']), ["unknown dtype 'fp8'"], out)
    expect.failure('unknown output format', ['embed', '--model', base, '--input', texts, '--output', work / 'out.csv'],
          ['out.csv', 'unknown format'])
    expect.failure('output directory missing', ['embed', '--model', base, '--input', texts, '--output',
                                              work / 'nodir' / 'e.npy'], ['nodir', 'does not exist'])
    expect.failure('unknown option', ['embed', '--modle', base], ['modle', "angle embed --help"])

    bad_stsb = work / 'bad-sts.csv'
    bad_stsb.write_text('main-captions\tMSRvid\t2012test\t0001\t5.000\tA plane.\tA plane.\n'
                        'main-captions\tMSRvid\t2012test\t0002\tfive\tA man.\tA man.\n')
    expect.failure('STS-B score not a number', ['eval', '--model', base, '--data', f'stsb:{bad_stsb}'],
          ['bad-sts.csv:2', "'five' is not a number"])
    short = work / 'short-sts.csv'
    short.write_text('a\tb\tc\td\t1.0\tonly one sentence\n')
    expect.failure('STS-B row with too few columns', ['eval', '--model', base, '--data', f'stsb:{short}'],
          ['short-sts.csv:1', 'expected at least 7'])
    expect.failure('unknown data format', ['eval', '--model', base, '--data', 'msrp:x.tsv'], ["unknown format 'msrp'"])

    # decoder configurations: a tiny llama config broken one field at a time (errors come before weights)
    def decoder_dir(name, index=None, **changes):
        d = work / name
        d.mkdir()
        cfg = {'model_type': 'llama', 'vocab_size': 16, 'hidden_size': 8, 'intermediate_size': 16,
               'num_hidden_layers': 1, 'num_attention_heads': 2, 'max_position_embeddings': 64, **changes}
        (d / 'config.json').write_text(json.dumps(cfg))
        if index:
            (d / 'model.safetensors.index.json').write_text(json.dumps({'metadata': {}, 'weight_map': index}))
        return d

    expect.failure('unsupported decoder model_type', embed(decoder_dir('falcon', model_type='falcon')),
                   ['config.json', "model_type 'falcon'", 'llama, mistral, qwen2, qwen3'], out)
    jobs = pathlib.Path(__file__).resolve().parents[2] / 'jobs'
    expect.failure('model.is_llm contradicting config.json, refused before any data is read',
                   ['train', '--job', jobs / 'stsb.ini', '--model.path', decoder_dir('train-decoder'),
                    '--model.is_llm', 'false', '--run.output_dir', work / 'train-out', '--data.dev', '',
                    '--data.test', ''], ['model.is_llm = false', 'is a LLaMA-family decoder'], work / 'train-out')
    # Placement (comm/placement.h): backend and device that disagree, refused before any work.
    # (No GPU is visible here: train.device = cuda is refused for that; a GPU machine runs the rest.)
    placement = [
        ('nccl with CPU tensors', ['--train.backend', 'nccl'], ['train.backend = nccl moves CUDA tensors']),
        ('mpi with CUDA tensors, no host staging', ['--train.device', 'cuda', '--train.backend', 'mpi'],
         ['train.backend = mpi moves CPU tensors', 'train.host_staging = true']),
        ('host staging on the CPU', ['--train.host_staging', 'true'], ['train.host_staging = true stages CUDA tensors']),
        ('host staging under nccl', ['--train.device', 'cuda', '--train.backend', 'nccl', '--train.host_staging',
                                     'true'], ['train.host_staging = true is for train.backend = mpi']),
        ('cuda with no GPU visible', ['--train.device', 'cuda'], ['train.device = cuda: no CUDA device is visible']),
    ]
    for label, extra, message in placement:
        expect.failure(label, ['train', '--job', jobs / 'stsb.ini', '--run.output_dir', work / 'placement-out',
                               '--train.max_steps', '1'] + extra, message, work / 'placement-out')
    expect.failure('unsupported rope scaling', embed(decoder_dir('yarn', rope_scaling={'type': 'yarn', 'factor': 4.0})),
                   ['config.json', "rope scaling type 'yarn' is not supported"], out)
    expect.failure('sharded index naming a missing file',
                   embed(decoder_dir('missing-shard', index={'embed_tokens.weight': 'model-00002-of-00002.safetensors'})),
                   ['model.safetensors.index.json', "names 'model-00002-of-00002.safetensors', which is missing"], out)

    # tokenizer.json variants: a tiny valid BPE (a b ab) broken one field at a time
    def bpe_dir(name, **changes):
        spec = {'model': {'type': 'BPE', 'vocab': {'a': 0, 'b': 1, 'ab': 2}, 'merges': ['a b']},
                'normalizer': None, 'pre_tokenizer': {'type': 'ByteLevel'}, 'post_processor': None, 'added_tokens': []}
        for key, value in changes.items():
            (spec['model'] if key in ('type', 'merges') else spec)[key] = value
        d = work / name
        d.mkdir()
        (d / 'tokenizer.json').write_text(json.dumps(spec))
        return d

    def tokenize(model):
        return ['tokenize', '--model', model, '--input', texts]

    expect.failure('tokenizer model type unsupported', tokenize(bpe_dir('unigram', type='Unigram')),
                   ['tokenizer.json', "model.type 'Unigram' is not supported"])
    expect.failure('BPE merge of a token not in the vocabulary', tokenize(bpe_dir('bad-merge', merges=['a c'])),
                   ['tokenizer.json', "model.merges[0] needs 'c'"])
    expect.failure('BPE merge not two tokens', tokenize(bpe_dir('merge-3', merges=['a b c'])),
                   ['tokenizer.json', "model.merges[0] 'a b c' is not two tokens"])
    expect.failure('pre-tokenizer unsupported', tokenize(bpe_dir('whitespace', pre_tokenizer={'type': 'Whitespace'})),
                   ['tokenizer.json', "pre_tokenizer type 'Whitespace' is not supported"])
    expect.failure('normalizer unsupported', tokenize(bpe_dir('precompiled', normalizer={'type': 'Precompiled'})),
                   ['tokenizer.json', "normalizer type 'Precompiled' is not supported"])
    expect.failure('split regex invalid', tokenize(bpe_dir('bad-regex', pre_tokenizer={
        'type': 'Split', 'pattern': {'Regex': '(unclosed'}, 'behavior': 'Isolated', 'invert': False})),
                   ['tokenizer.json', "cannot compile the pattern '(unclosed'"])
    not_json_string = work / 'not-string.jsonl'
    not_json_string.write_text('"fine"\n[1, 2]\n')
    expect.failure('--jsonl line not a string', ['tokenize', '--model', bpe_dir('ok'), '--jsonl', '--input',
                                                 not_json_string], ['not-string.jsonl:2', 'not a JSON string'])

    # every subcommand listed by `angle --help` answers --help with its usage and exit 0
    import re
    import subprocess
    listing = subprocess.run([str(angle), '--help'], capture_output=True, text=True).stdout
    commands = re.findall(r'^  (\w+) ', listing, flags=re.M)
    for command in commands:
        proc = subprocess.run([str(angle), command, '--help'], capture_output=True, text=True)
        ok = proc.returncode == 0 and f'usage: angle {command}' in proc.stdout
        print(f'[{"ok" if ok else "FAIL"}] angle {command} --help')
        if not ok:
            expect.failures.append(f'angle {command} --help: rc={proc.returncode} {proc.stdout[:200]}')
    if len(commands) < 9:
        expect.failures.append(f'angle --help lists {commands}')

    expect.exit_status()
    print('all error cases behave')


if __name__ == '__main__':
    main()
