import type { Command, Option } from 'commander';

// A bash completion script generated from the commander tree itself (commander has none built
// in), so a command or option added to the CLI is completed without editing this file.

const flagsOf = (o: Option): string[] => [o.short, o.long].filter((f): f is string => f !== undefined);
const takesValue = (o: Option): boolean => o.required || o.optional;

/** `case "$prev"` arms for options that take a value: their choices, file names, or nothing. */
function valueArms(options: readonly Option[], indent: string): string[] {
  return options.filter(takesValue).map((o) => {
    const reply =
      o.argChoices !== undefined
        ? `COMPREPLY=($(compgen -W "${o.argChoices.join(' ')}" -- "$cur")); return 0`
        : o.flags.includes('<file>')
          ? 'compopt -o filenames 2>/dev/null; COMPREPLY=($(compgen -f -- "$cur")); return 0'
          : 'return 0';
    return `${indent}${flagsOf(o).join('|')}) ${reply} ;;`;
  });
}

/** The script; `source <(aviary completion)` loads it into the current shell. */
export function bashCompletion(program: Command): string {
  const help = program.createHelp();
  const name = program.name();
  const fn = `_${name.replace(/[^A-Za-z0-9_]/g, '_')}_completion`;
  const globals = help.visibleOptions(program);
  const commands = help.visibleCommands(program);
  const commandNames = commands.map((c) => c.name());
  const globalValueFlags = globals.filter(takesValue).flatMap(flagsOf);
  const globalLongs = program.options.flatMap((o) => (o.long === undefined ? [] : [o.long]));
  const arms = commands.map((c) => {
    const own = help.visibleOptions(c);
    // The implicit `help` command is not in program.commands; it completes command names.
    const words = program.commands.includes(c) ? [...own.flatMap(flagsOf), ...globalLongs] : commandNames;
    const prevArms = valueArms(own, '        ');
    return [
      `    ${c.name()})`,
      ...(prevArms.length === 0 ? [] : ['      case "$prev" in', ...prevArms, '      esac']),
      `      words="${words.join(' ')}" ;;`,
    ].join('\n');
  });
  return [
    `# bash completion for ${name}, generated from its command tree by \`${name} completion\`.`,
    `# Load it with: source <(${name} completion)`,
    `${fn}() {`,
    '  local cur prev cmd words i',
    '  cur="${COMP_WORDS[COMP_CWORD]}"',
    '  prev="${COMP_WORDS[COMP_CWORD-1]}"',
    '  cmd=""',
    '  for ((i = 1; i < COMP_CWORD; i++)); do',
    '    case "${COMP_WORDS[i]}" in',
    `      ${globalValueFlags.join('|')}) i=$((i + 1)) ;;`,
    '      -*) ;;',
    '      *) cmd="${COMP_WORDS[i]}"; break ;;',
    '    esac',
    '  done',
    '  case "$prev" in',
    ...valueArms(globals, '    '),
    '  esac',
    '  case "$cmd" in',
    `    "") words="${[...commandNames, ...globals.flatMap(flagsOf)].join(' ')}" ;;`,
    ...arms,
    '    *) return 0 ;;',
    '  esac',
    '  COMPREPLY=($(compgen -W "$words" -- "$cur"))',
    '}',
    `complete -F ${fn} ${name}`,
  ].join('\n');
}
