// The Lambda Node.js runtime, as it behaves inside one execution environment.
//
// The worker process (forked by the zygote, already inside its sandbox) execs
//     node node_runtime.js <handler> <channel fd> <function ARN>
// with fds 1 and 2 on the output pipe and Lambda's environment variables. This
// script speaks the framed protocol of protocol.py on the channel fd (a 4-byte
// big-endian length and that many bytes of UTF-8 JSON): `ready` or `init_error`
// once, then one `result` per `invoke`.
//
// What user code can observe follows the AWS Lambda Node.js runtime interface
// client (aws/aws-lambda-nodejs-runtime-interface-client: UserFunction.js,
// CallbackContext.js, Errors.js, LogPatch.js, Runtime.js):
//
// * handlers `module.function` (the module may sit in folders and the function
//   be nested, `src/app.handlers.viewer`), loaded from the task root as Lambda
//   loads them: extensionless, .js with require (or import when the nearest
//   package.json says "type": "module"), .mjs with import, .cjs with require;
// * async handlers (their promise is the result), callback handlers
//   `(event, context, callback)` whose result waits for the event loop to be
//   empty unless `context.callbackWaitsForEmptyEventLoop = false`, and
//   `context.succeed/fail/done`; a plain function that neither returns a
//   promise nor calls back answers `null` once the event loop is empty;
// * the context object's fields and getRemainingTimeInMillis();
// * console.* lines `<ISO time>\t<request id>\t<LEVEL>\t<message>` (the request
//   id is `undefined` during Init). Lambda joins a message's lines with \r into
//   one CloudWatch event; here they stay separate lines, as for Python;
// * error payloads {errorType, errorMessage, trace}, the "Invoke Error" and
//   "Uncaught Exception" log lines, and the runtime's fault names:
//   Runtime.ImportModuleError, Runtime.HandlerNotFound,
//   Runtime.MalformedHandlerName, Runtime.UserCodeSyntaxError,
//   Runtime.UnhandledPromiseRejection; an uncaught exception or unhandled
//   rejection during an invocation fails it and ends the environment (exit
//   129 / 128), as Lambda's runtime does;
// * an event loop that empties before the handler answered ends the
//   invocation: Runtime.NodeJsExit for an async handler, null for any other.

'use strict';

const fs = require('fs');
const net = require('net');
const path = require('path');
const util = require('util');

const [handlerName, channelFd, functionArn] = process.argv.slice(2);
const taskRoot = process.env.LAMBDA_TASK_ROOT || process.cwd();
const MAX_FRAME = 64 * 1024 * 1024;

class RuntimeError extends Error {}
const faults = {};
for (const name of [
  'ImportModuleError',
  'HandlerNotFound',
  'MalformedHandlerName',
  'UserCodeSyntaxError',
  'UnhandledPromiseRejection',
  'NodeJsExit',
]) {
  faults[name] = class extends RuntimeError {};
  faults[name].prototype.name = `Runtime.${name}`;
}
// Lambda's words when an async handler's promise is still pending with nothing
// left for the event loop to run (the runtime interface client's NodeJsExit).
const NODE_JS_EXIT =
  'The Lambda runtime client detected an unexpected Node.js exit code. This is most commonly ' +
  'caused by a Promise that was never settled. For more information, see ' +
  'https://nodejs.org/docs/latest/api/process.html#exit-codes';

// -- logging ---------------------------------------------------------------

let currentRequestId; // undefined during Init, as in Lambda's logs

function writeLog(level, args) {
  const time = new Date().toISOString();
  process.stdout.write(`${time}\t${currentRequestId}\t${level}\t${util.format(...args)}\n`);
}

for (const [method, level] of [
  ['trace', 'TRACE'],
  ['debug', 'DEBUG'],
  ['info', 'INFO'],
  ['log', 'INFO'],
  ['warn', 'WARN'],
  ['error', 'ERROR'],
  ['fatal', 'FATAL'],
]) {
  console[method] = (...args) => writeLog(level, args);
}

function errorPayload(error) {
  try {
    if (util.types.isNativeError(error) || (error && typeof error.stack === 'string')) {
      return {
        errorType: String(error.name),
        errorMessage: String(error.message),
        trace: String(error.stack).split('\n'),
      };
    }
    return { errorType: typeof error, errorMessage: String(error), trace: [] };
  } catch (_) {
    return {
      errorType: 'handled',
      errorMessage:
        'callback called with Error argument, but there was a problem while retrieving one or more of its message, name, and stack',
    };
  }
}

// The runtime logs an error as JSON with its enumerable fields and the stack as a list.
function formatted(error) {
  const err = error instanceof Error ? error : new Error(error);
  try {
    return '\t' + JSON.stringify(err, (_k, v) => {
      if (!(v instanceof Error)) return v;
      const out = Object.assign({ errorType: v.name, errorMessage: v.message, code: v.code }, v);
      if (typeof v.stack === 'string') out.stack = v.stack.split('\n');
      return out;
    });
  } catch (_) {
    return '\t' + JSON.stringify(errorPayload(err));
  }
}

// -- the channel -------------------------------------------------------------

const channel = new net.Socket({ fd: Number(channelFd), readable: true, writable: true });
let pending = Buffer.alloc(0);
const inbox = [];

function send(message) {
  const body = Buffer.from(JSON.stringify(message), 'utf8');
  const head = Buffer.alloc(4);
  head.writeUInt32BE(body.length, 0);
  channel.write(Buffer.concat([head, body]));
}

channel.on('data', (chunk) => {
  pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
  while (pending.length >= 4) {
    const size = pending.readUInt32BE(0);
    if (size > MAX_FRAME) process.exit(1);
    if (pending.length < 4 + size) break;
    inbox.push(JSON.parse(pending.subarray(4, 4 + size).toString('utf8')));
    pending = pending.subarray(4 + size);
  }
  next();
});
channel.on('end', () => process.exit(0));
channel.on('error', () => process.exit(0));

function rssKb() {
  return process.resourceUsage().maxRSS;
}

// -- loading the handler -----------------------------------------------------

function packageSaysModule(folder) {
  for (let dir = folder; ; dir = path.dirname(dir)) {
    if (dir.endsWith('/node_modules')) return false;
    const file = path.join(dir, 'package.json');
    if (fs.existsSync(file)) {
      try {
        return JSON.parse(fs.readFileSync(file, 'utf8')).type === 'module';
      } catch (_) {
        return false;
      }
    }
    if (dir === path.dirname(dir)) return false;
  }
}

async function loadModule(file) {
  const exists = (ext) => fs.existsSync(file + ext) && fs.statSync(file + ext).isFile();
  if (exists('')) return require(file);
  const esm = packageSaysModule(path.dirname(file));
  if (!esm && exists('.js')) return require(file + '.js');
  if (esm && exists('.js')) return import(file + '.js');
  if (exists('.mjs')) return import(file + '.mjs');
  if (exists('.cjs')) return require(file + '.cjs');
  return require(require.resolve(path.basename(file), { paths: [taskRoot, path.dirname(file)] }));
}

async function loadHandler(fullName) {
  if (fullName.includes('..')) {
    throw new faults.MalformedHandlerName(
      `'${fullName}' is not a valid handler name. Use absolute paths when specifying root directories in handler names.`,
    );
  }
  const base = path.basename(fullName);
  const moduleRoot = fullName.slice(0, fullName.indexOf(base));
  const match = base.match(/^([^.]*)\.(.*)$/);
  if (!match) throw new faults.MalformedHandlerName('Bad handler');
  const [, moduleName, functionPath] = match;
  let app;
  try {
    app = await loadModule(path.resolve(taskRoot, moduleRoot, moduleName));
  } catch (error) {
    if (error instanceof SyntaxError) throw new faults.UserCodeSyntaxError(String(error));
    if (error && error.code === 'MODULE_NOT_FOUND') {
      throw new faults.ImportModuleError(String(error));
    }
    throw error;
  }
  const handler = functionPath.split('.').reduce((obj, key) => obj && obj[key], app);
  if (!handler) throw new faults.HandlerNotFound(`${fullName} is undefined or not exported`);
  if (typeof handler !== 'function') {
    throw new faults.HandlerNotFound(`${fullName} is not a function`);
  }
  return handler;
}

// -- invocations -------------------------------------------------------------

let handler = null;
let handlerIsAsync = false; // declared `async`, which is how Lambda tells (UserFunction.js)
let active = null; // the invocation in progress

function finish(invocation, outcome) {
  if (active !== invocation || invocation.finished) return;
  invocation.finished = true;
  active = null;
  const message = {
    t: 'result',
    id: invocation.id,
    duration_ns: Number(process.hrtime.bigint() - invocation.started),
    rss_kb: rssKb(),
  };
  if ('error' in outcome) {
    message.error = outcome.error;
  } else {
    try {
      message.payload = outcome.payload === undefined ? null : outcome.payload;
      send(message);
      channel.ref();
      setImmediate(next);
      return;
    } catch (error) {
      delete message.payload;
      message.error = {
        errorType: 'Runtime.MarshalError',
        errorMessage: `Unable to stringify response body: ${error}`,
        trace: [],
      };
    }
  }
  send(message);
  channel.ref();
  setImmediate(next);
}

function fail(invocation, error) {
  console.error('Invoke Error', formatted(error));
  finish(invocation, { error: errorPayload(error) });
}

function contextFor(invocation, deadlineMs) {
  const env = process.env;
  let waits = true;
  const once = (fn) => (...args) => {
    if (!invocation.called) {
      invocation.called = true;
      fn(...args);
    }
  };
  const done = (err, result) => {
    invocation.whenEmpty = null;
    if (err !== undefined && err !== null) fail(invocation, err);
    else finish(invocation, { payload: result });
  };
  const callback = once((err, result) => {
    if (err !== undefined && err !== null) {
      invocation.whenEmpty = null;
      fail(invocation, err);
    } else if (!waits) {
      done(null, result);
    } else {
      invocation.whenEmpty = () => done(null, result);
    }
  });
  const context = {
    get callbackWaitsForEmptyEventLoop() {
      return waits;
    },
    set callbackWaitsForEmptyEventLoop(value) {
      waits = value;
    },
    succeed: once((result) => done(null, result)),
    fail: once((err) => done(err === undefined || err === null ? 'handled' : err, null)),
    done: once(done),
    functionVersion: env.AWS_LAMBDA_FUNCTION_VERSION,
    functionName: env.AWS_LAMBDA_FUNCTION_NAME,
    memoryLimitInMB: env.AWS_LAMBDA_FUNCTION_MEMORY_SIZE,
    logGroupName: env.AWS_LAMBDA_LOG_GROUP_NAME,
    logStreamName: env.AWS_LAMBDA_LOG_STREAM_NAME,
    clientContext: undefined,
    identity: undefined,
    invokedFunctionArn: functionArn,
    awsRequestId: invocation.id,
    getRemainingTimeInMillis: () => Math.max(deadlineMs - Date.now(), 0),
  };
  return [context, callback];
}

function invoke(message) {
  const invocation = {
    id: String(message.id),
    started: process.hrtime.bigint(),
    finished: false,
    called: false,
    whenEmpty: null,
  };
  // The event loop emptied with no result yet (no callback called, a promise
  // still pending): an async handler fails with Runtime.NodeJsExit, any other
  // answers null, as Lambda's runtime does; the environment stays.
  invocation.whenEmpty = handlerIsAsync
    ? () => fail(invocation, new faults.NodeJsExit(NODE_JS_EXIT))
    : () => finish(invocation, { payload: null });
  active = invocation;
  currentRequestId = invocation.id;
  // Unreferenced, the channel does not keep the loop alive: 'beforeExit' tells
  // when the function's own work (timers, sockets) is done.
  channel.unref();
  const [context, callback] = contextFor(invocation, Date.now() + Number(message.timeout_ms));
  try {
    const result = handler(message.event, context, callback);
    if (result && typeof result.then === 'function') {
      result.then(
        (value) => {
          if (!invocation.called) {
            invocation.called = true;
            finish(invocation, { payload: value });
          }
        },
        (error) => {
          if (!invocation.called) {
            invocation.called = true;
            fail(invocation, error);
          }
        },
      );
    }
  } catch (error) {
    invocation.called = true;
    invocation.whenEmpty = null;
    fail(invocation, error);
  }
}

function next() {
  if (active !== null || handler === null) return;
  const message = inbox.shift();
  if (message === undefined) return;
  if (message.t === 'invoke') invoke(message);
  else setImmediate(next);
}

process.on('beforeExit', () => {
  const invocation = active;
  if (invocation !== null && invocation.whenEmpty !== null) {
    const complete = invocation.whenEmpty;
    invocation.whenEmpty = null;
    setImmediate(complete);
  } else {
    channel.ref();
  }
});

function crash(kind, exitCode, error) {
  const invocation = active;
  console.error(kind === 'uncaught' ? 'Uncaught Exception' : 'Unhandled Promise Rejection',
    formatted(error));
  if (invocation !== null && !invocation.finished) {
    invocation.finished = true;
    send({
      t: 'result',
      id: invocation.id,
      duration_ns: Number(process.hrtime.bigint() - invocation.started),
      rss_kb: rssKb(),
      error: errorPayload(error),
    });
  }
  channel.end(() => process.exit(exitCode));
  setTimeout(() => process.exit(exitCode), 200).unref();
}

process.on('uncaughtException', (error) => crash('uncaught', 129, error));
process.on('unhandledRejection', (reason) => {
  const error = new faults.UnhandledPromiseRejection(
    reason === undefined || reason === null ? String(reason) : reason.toString(),
  );
  crash('rejection', 128, error);
});

// -- Init ----------------------------------------------------------------------

(async () => {
  try {
    handler = await loadHandler(handlerName);
    handlerIsAsync = handler.constructor !== undefined && handler.constructor.name === 'AsyncFunction';
  } catch (error) {
    console.error('Uncaught Exception', formatted(error));
    send({ t: 'init_error', error: errorPayload(error), init_ms: performance.now(), rss_kb: rssKb() });
    channel.end(() => process.exit(1));
    return;
  }
  send({ t: 'ready', init_ms: performance.now(), rss_kb: rssKb(), tmp: process.env.TMPDIR || '/tmp' });
  next();
})();
