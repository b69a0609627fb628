// The CloudFront Functions runtime around a function, run in each fresh QuickJS
// context before the function's own code (cff_runtime.py). It is called with
// the runtime name ("cloudfront-js-1.0" or "-2.0") and the host functions, and
// returns the invoker cff_runtime calls per request.
//
// What it makes true (functions-javascript-runtime-10.html / -20.html, "Restricted
// features" and "Built-in modules"; helper-functions-origin-modification.html;
// functions-custom-methods.html):
// * no eval and no Function constructors (of any kind: plain, async, generator):
//   both throw EvalError; no timers (setTimeout & co. are not defined);
// * Date returns the same instant, the start of the run, for the whole run;
// * console has only log();
// * require() knows only "crypto" and "querystring", and "cloudfront" in 2.0;
// * crypto: createHash / createHmac with md5, sha1, sha256; digest encodings
//   hex, base64, base64url; no encoding: a byte string in 1.0, a Buffer in 2.0;
// * 1.0 has String.prototype.bytesFrom/fromBytes/fromUTF8/toBytes/toUTF8,
//   2.0 has Buffer instead;
// * cloudfront (2.0): kvs() with get/exists/meta, and the origin helpers
//   updateRequestOrigin, selectRequestOriginById, createRequestOriginGroup
//   (viewer-request only).
(function (runtime, host) {
  'use strict';
  var v2 = runtime === 'cloudfront-js-2.0';
  var G = globalThis;

  // -- dynamic code evaluation --------------------------------------------------
  function noCode() {
    throw new EvalError('Code generation from strings is not allowed in CloudFront Functions');
  }
  var protos = [
    Object.getPrototypeOf(function () {}),
    Object.getPrototypeOf(async function () {}),
    Object.getPrototypeOf(function* () {}),
    Object.getPrototypeOf(async function* () {}),
  ];
  protos.forEach(function (proto) {
    Object.defineProperty(proto, 'constructor', { value: noCode, writable: false, configurable: false });
  });
  noCode.prototype = protos[0];
  Object.defineProperty(G, 'Function', { value: noCode, writable: false, configurable: false });
  Object.defineProperty(G, 'eval', { value: noCode, writable: false, configurable: false });

  // -- time ---------------------------------------------------------------------
  var RealDate = Date;
  var start = { ms: RealDate.now() };
  function FrozenDate() {
    var args = Array.prototype.slice.call(arguments);
    if (!new.target) return new RealDate(start.ms).toString();
    if (args.length === 0) return new RealDate(start.ms);
    return new (Function.prototype.bind.apply(RealDate, [null].concat(args)))();
  }
  FrozenDate.prototype = RealDate.prototype;
  FrozenDate.now = function () {
    return start.ms;
  };
  FrozenDate.UTC = RealDate.UTC;
  FrozenDate.parse = RealDate.parse;
  Object.defineProperty(RealDate.prototype, 'constructor', { value: FrozenDate });
  G.Date = FrozenDate;

  // -- console --------------------------------------------------------------------
  function show(value) {
    if (typeof value === 'string') return value;
    try {
      var text = JSON.stringify(value);
      return text === undefined ? String(value) : text;
    } catch (_) {
      return String(value);
    }
  }
  G.console = {
    log: function () {
      host.log(Array.prototype.map.call(arguments, show).join(' '));
    },
  };

  // -- bytes ------------------------------------------------------------------------
  // Byte strings (one character per byte, 0-255) cross to the host and back.
  function bytesOf(data, encoding) {
    if (typeof data === 'string') {
      if (!encoding || encoding === 'utf8' || encoding === 'utf-8') return host.codec('utf8', data);
      if (encoding === 'latin1' || encoding === 'binary' || encoding === 'ascii') {
        return host.codec('latin1', data);
      }
      return host.codec('from-' + encoding, data);
    }
    if (data instanceof Uint8Array) {
      var out = '';
      for (var i = 0; i < data.length; i++) out += String.fromCharCode(data[i]);
      return out;
    }
    throw new TypeError('The "data" argument must be a string or a Buffer');
  }

  var Buffer;
  if (v2) {
    Buffer = class Buffer extends Uint8Array {
      static from(value, encoding) {
        if (typeof value === 'string') return Buffer.fromBytes(bytesOf(value, encoding));
        if (value instanceof ArrayBuffer) return new Buffer(value);
        if (Array.isArray(value) || value instanceof Uint8Array) {
          var b = new Buffer(value.length);
          for (var i = 0; i < value.length; i++) b[i] = value[i] & 255;
          return b;
        }
        throw new TypeError('The first argument must be a string, Buffer, ArrayBuffer or Array');
      }
      static fromBytes(bytes) {
        var b = new Buffer(bytes.length);
        for (var i = 0; i < bytes.length; i++) b[i] = bytes.charCodeAt(i);
        return b;
      }
      static alloc(size, fill) {
        var b = new Buffer(size);
        if (fill !== undefined) b.fill(typeof fill === 'string' ? fill.charCodeAt(0) : fill);
        return b;
      }
      static isBuffer(value) {
        return value instanceof Buffer;
      }
      static byteLength(value, encoding) {
        return typeof value === 'string' ? bytesOf(value, encoding).length : value.length;
      }
      static concat(list) {
        var size = list.reduce(function (n, b) { return n + b.length; }, 0);
        var out = new Buffer(size);
        var at = 0;
        list.forEach(function (b) { out.set(b, at); at += b.length; });
        return out;
      }
      toString(encoding, begin, end) {
        var bytes = bytesOf(this.subarray(begin || 0, end === undefined ? this.length : end));
        if (!encoding || encoding === 'utf8' || encoding === 'utf-8') return host.codec('to-utf8', bytes);
        if (encoding === 'latin1' || encoding === 'binary') return bytes;
        return host.codec('to-' + encoding, bytes);
      }
      equals(other) {
        if (this.length !== other.length) return false;
        for (var i = 0; i < this.length; i++) if (this[i] !== other[i]) return false;
        return true;
      }
      slice(begin, end) {
        return this.subarray(begin, end);
      }
      toJSON() {
        return { type: 'Buffer', data: Array.prototype.slice.call(this) };
      }
    };
    G.Buffer = Buffer;
  } else {
    String.bytesFrom = function (data, encoding) {
      if (Array.isArray(data)) return String.fromCharCode.apply(null, data.map(function (b) { return b & 255; }));
      return host.codec('from-' + (encoding || 'hex'), String(data));
    };
    var methods = {
      bytesFrom: function (data, encoding) { return String.bytesFrom(data, encoding); },
      fromBytes: function (begin, end) { return this.slice(begin, end); },
      fromUTF8: function (begin, end) { return host.codec('to-utf8-strict', this.slice(begin, end)); },
      toBytes: function (begin, end) {
        var s = this.slice(begin, end);
        for (var i = 0; i < s.length; i++) if (s.charCodeAt(i) > 255) return null;
        return s;
      },
      toUTF8: function (begin, end) { return host.codec('utf8', this.slice(begin, end)); },
    };
    Object.keys(methods).forEach(function (name) {
      Object.defineProperty(String.prototype, name, { value: methods[name], writable: true, configurable: true });
    });
  }

  // -- modules ----------------------------------------------------------------------
  var ALGORITHMS = { md5: 1, sha1: 1, sha256: 1 };
  function digester(algorithm, key) {
    if (!ALGORITHMS.hasOwnProperty(algorithm)) throw new Error('Digest method not supported');
    var data = '';
    return {
      update: function (chunk, encoding) {
        data += bytesOf(chunk, encoding);
        return this;
      },
      digest: function (encoding) {
        var raw = host.digest(algorithm, data, key);
        if (encoding) return host.codec('to-' + encoding, raw);
        return v2 ? Buffer.fromBytes(raw) : raw;
      },
    };
  }
  var crypto = {
    createHash: function (algorithm) { return digester(algorithm, null); },
    createHmac: function (algorithm, key) { return digester(algorithm, bytesOf(key)); },
  };

  function qsEscape(s) {
    return encodeURIComponent(s);
  }
  function qsUnescape(s) {
    try {
      return decodeURIComponent(s);
    } catch (_) {
      return host.codec('unescape', s);
    }
  }
  var querystring = {
    escape: qsEscape,
    unescape: qsUnescape,
    parse: function (text, sep, eq, options) {
      sep = sep || '&';
      eq = eq || '=';
      var decode = (options && options.decodeURIComponent) || qsUnescape;
      var max = options && typeof options.maxKeys === 'number' ? options.maxKeys : 1000;
      var out = {};
      if (typeof text !== 'string' || text.length === 0) return out;
      var parts = text.split(sep);
      if (max > 0 && parts.length > max) parts = parts.slice(0, max);
      parts.forEach(function (part) {
        if (part === '') return;
        var at = part.indexOf(eq);
        var k = at >= 0 ? part.slice(0, at) : part;
        var v = at >= 0 ? part.slice(at + eq.length) : '';
        k = decode(k.replace(/\+/g, ' '));
        v = decode(v.replace(/\+/g, ' '));
        if (!Object.prototype.hasOwnProperty.call(out, k)) out[k] = v;
        else if (Array.isArray(out[k])) out[k].push(v);
        else out[k] = [out[k], v];
      });
      return out;
    },
    stringify: function (obj, sep, eq, options) {
      sep = sep || '&';
      eq = eq || '=';
      var encode = (options && options.encodeURIComponent) || qsEscape;
      var str = function (v) {
        return typeof v === 'string' ? v : typeof v === 'number' && isFinite(v) ? String(v)
          : typeof v === 'boolean' ? String(v) : '';
      };
      if (obj === null || typeof obj !== 'object') return '';
      return Object.keys(obj).map(function (k) {
        var v = obj[k];
        var key = encode(str(k)) + eq;
        if (Array.isArray(v)) return v.map(function (x) { return key + encode(str(x)); }).join(sep);
        return key + encode(str(v));
      }).filter(function (s) { return s.length; }).join(sep);
    },
  };
  querystring.decode = querystring.parse;
  querystring.encode = querystring.stringify;

  var run = { eventType: '', origin: null };
  function originHelper(kind) {
    return function (value) {
      if (run.eventType !== 'viewer-request') {
        throw new Error('The origin can be changed only in a viewer request function');
      }
      run.origin = { kind: kind, value: value === undefined ? null : value };
    };
  }
  function kvsHandle() {
    if (!host.kvs('present')) {
      throw new Error('No key value store is associated with this function');
    }
    return {
      get: function (key, options) {
        var format = (options && options.format) || 'string';
        if (['string', 'json', 'bytes'].indexOf(format) < 0) {
          return Promise.reject(new Error('Unknown format ' + format));
        }
        if (!host.kvs('exists', String(key))) {
          return Promise.reject(new Error('Key ' + key + ' does not exist'));
        }
        var value = host.kvs('get', String(key));
        try {
          if (format === 'json') return Promise.resolve(JSON.parse(value));
          if (format === 'bytes') return Promise.resolve(Buffer.from(value));
        } catch (error) {
          return Promise.reject(error);
        }
        return Promise.resolve(value);
      },
      exists: function (key) {
        return Promise.resolve(Boolean(host.kvs('exists', String(key))));
      },
      meta: function () {
        return Promise.resolve(JSON.parse(host.kvs('meta')));
      },
    };
  }
  var cloudfront = {
    kvs: function () { return kvsHandle(); },
    updateRequestOrigin: originHelper('update'),
    selectRequestOriginById: originHelper('select'),
    createRequestOriginGroup: originHelper('group'),
  };

  var modules = { crypto: crypto, querystring: querystring };
  if (v2) modules.cloudfront = cloudfront;
  G.require = function (name) {
    if (Object.prototype.hasOwnProperty.call(modules, name)) return modules[name];
    throw new Error('Cannot find module "' + name + '"');
  };

  // -- one run --------------------------------------------------------------------------
  var outcome = { done: false, value: undefined, error: undefined };
  function settle(value) {
    outcome.done = true;
    outcome.value = value;
  }
  function fail(error) {
    outcome.done = true;
    outcome.error = error;
  }
  function describe(error) {
    if (error instanceof Error) return [error.name, error.message];
    return ['Error', show(error)];
  }
  return {
    invoke: function (eventJson, startMs) {
      start.ms = startMs;
      run.origin = null;
      outcome.done = false;
      outcome.value = outcome.error = undefined;
      var event = JSON.parse(eventJson);
      run.eventType = event.context && event.context.eventType;
      if (typeof G.handler !== 'function') throw new ReferenceError('handler is not defined');
      var result = G.handler(event);
      if (result && typeof result.then === 'function') result.then(settle, fail);
      else settle(result);
    },
    // JSON of {done, output | error, origin}; output undefined becomes null.
    outcome: function () {
      if (!outcome.done) return JSON.stringify({ done: false });
      if (outcome.error !== undefined) {
        return JSON.stringify({ done: true, error: describe(outcome.error) });
      }
      var output = outcome.value === undefined ? null : outcome.value;
      return JSON.stringify({ done: true, output: output, origin: run.origin });
    },
  };
});
