/**
 * A small structured logger shared by every layer. Levels: error < warn < info < debug < trace.
 * Text lines go to stderr as `LEVEL [component] message key=value ...`; json emits one object per line.
 */
export type LogLevel = 'silent' | 'error' | 'warn' | 'info' | 'debug' | 'trace';
export const LOG_LEVELS: readonly LogLevel[] = ['silent', 'error', 'warn', 'info', 'debug', 'trace'];

const rank: Record<LogLevel, number> = { silent: 0, error: 1, warn: 2, info: 3, debug: 4, trace: 5 };

export type LogFields = Record<string, string | number | boolean | undefined | null>;

export interface LogSink {
  write(line: string): void;
}

export class Logger {
  private readonly levelRank: number;
  constructor(
    readonly level: LogLevel = 'info',
    readonly format: 'text' | 'json' = 'text',
    private readonly sink: LogSink = { write: (l) => process.stderr.write(l) },
    private readonly component = '',
  ) {
    this.levelRank = rank[level];
  }
  child(component: string): Logger {
    return new Logger(this.level, this.format, this.sink, this.component ? `${this.component}.${component}` : component);
  }
  enabled(level: LogLevel): boolean {
    return rank[level] <= this.levelRank && level !== 'silent';
  }
  error(msg: string, fields?: LogFields): void {
    this.log('error', msg, fields);
  }
  warn(msg: string, fields?: LogFields): void {
    this.log('warn', msg, fields);
  }
  info(msg: string, fields?: LogFields): void {
    this.log('info', msg, fields);
  }
  debug(msg: string, fields?: LogFields): void {
    this.log('debug', msg, fields);
  }
  trace(msg: string, fields?: LogFields): void {
    this.log('trace', msg, fields);
  }
  log(level: LogLevel, msg: string, fields?: LogFields): void {
    if (!this.enabled(level)) return;
    const time = new Date().toISOString();
    if (this.format === 'json') {
      const obj: Record<string, unknown> = { time, level, component: this.component || undefined, msg };
      if (fields) for (const [k, v] of Object.entries(fields)) if (v !== undefined) obj[k] = v;
      this.sink.write(JSON.stringify(obj) + '\n');
      return;
    }
    let line = `${time} ${level.toUpperCase().padEnd(5)} ${this.component ? `[${this.component}] ` : ''}${msg}`;
    if (fields) {
      for (const [k, v] of Object.entries(fields)) {
        if (v === undefined) continue;
        const s = String(v);
        line += ` ${k}=${/[\s"=]/.test(s) ? JSON.stringify(s) : s}`;
      }
    }
    this.sink.write(line + '\n');
  }
}

/** A logger that drops everything (library default). */
export const silentLogger = new Logger('silent');

export function parseLogLevel(s: string): LogLevel | undefined {
  return (LOG_LEVELS as readonly string[]).includes(s) ? (s as LogLevel) : undefined;
}
