/*! analytics.js served by the collector: a small first-party, Segment-compatible browser library.
 *
 * Load it with Segment's snippet, its host switched to the collector (GET /snippet.js?writeKey=...
 * prints one). The collector fills CONFIG in below: write key, its own origin, batching, consent
 * categories and cookie options, so the script needs no settings request.
 *
 * The snippet API: identify track page screen group alias reset ready on once off debug
 * setAnonymousId trackLink trackForm (trackClick trackSubmit) pageview addSourceMiddleware
 * addDestinationMiddleware addIntegrationMiddleware register, user(), group(). Calls queued before
 * the script loads are replayed: setup calls (register, middleware, on, once, debug,
 * setAnonymousId) first, then the others, each group in the order they were made.
 * Identity: Segment's cookies and localStorage keys, so visitors keep their ids across a switch.
 * Delivery: batches to <collector>/v1/b; every event waits in localStorage until the collector
 * accepts it (network errors, 408, 410, 429, 460 and 5xx but 501/505 are retried with backoff,
 * across page loads; other 4xx are dropped); on pagehide / hidden the rest goes with
 * fetch(keepalive).
 *
 * Consent:
 *   analytics.load(writeKey, {consent: {hold: true}})  hold events in the page until consent is
 *       given (the collector's browser.hold_until_consent sets the default);
 *       {consent: {categoryPreferences: {...}}} gives it right away.
 *   analytics.setConsent({Analytics: true, Advertising: false})  records the visitor's choice:
 *       categories the collector knows but not listed count as false; it is kept in localStorage
 *       (ajs_consent) for later pages; held events are released; every event from then on carries
 *       context.consent.categoryPreferences; when the choice differs from the stored one, the
 *       track event "Segment Consent Preference Updated" is sent. setConsent(null) forgets it.
 *   analytics.consent()  the current preferences, or null.   analytics.on('consent', fn)
 * Held events live only in the page: a visitor who leaves before choosing is not recorded.
 *
 * Google Analytics 4: on a page with Google's tag (its _ga cookie), every event carries the GA client
 * id, and the session id of the _ga_<container> cookie, in integrations['Google Analytics 4'] =
 * {clientId, sessionId} (Segment's place for one destination's options), so that the collector's
 * GA4 destination joins server-side events to the browser's GA sessions. A call that turns that
 * destination off (or every destination, without naming it) gets nothing added. With several GA4
 * tags on the page, analytics.load(writeKey, {integrations: {'Google Analytics 4': {measurementId:
 * 'G-XXXXXXX'}}}) says whose session to send.
 */
(() => {
  'use strict';

  const CONFIG = /*@config*/{
    writeKey: '', origin: '', version: 'dev',
    batch: {size: 10, timeout: 1000, bytes: 60000},
    queue: {max: 1000, maxAge: 604800000, maxBackoff: 60000},
    consent: {categories: [], hold: false},
    cookie: {domain: null, maxAge: 31536000, sameSite: 'Lax', secure: null, credentials: false},
  }/*@end*/;

  const script = document.currentScript;
  const KEY = (script && script.getAttribute('data-global-segment-analytics-key')) || 'analytics';
  const buffered = window[KEY];
  if (buffered && buffered.initialized) return; // loaded twice

  const isObj = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
  const isFn = (v) => typeof v === 'function';
  const now = () => Date.now();
  const uuid = () => '10000000-1000-4000-8000-100000000000'.replace(/[018]/g, (c) =>
    (c ^ (crypto.getRandomValues(new Uint8Array(1))[0] & (15 >> (c / 4)))).toString(16));
  let debugging = false;
  const log = (...args) => debugging && console.log('[analytics]', ...args);

  const loadOptions = (buffered && buffered._loadOptions) || {};
  const sio = (loadOptions.integrations || {})['Segment.io'] || {};
  const strategy = (sio.deliveryStrategy && sio.deliveryStrategy.config) || {};
  const writeKey = CONFIG.writeKey || (buffered && buffered._writeKey);
  const API = sio.apiHost ? (sio.protocol || 'https') + '://' + sio.apiHost : CONFIG.origin + '/v1';
  const BATCH_SIZE = strategy.size || CONFIG.batch.size;
  const BATCH_WAIT = strategy.timeout != null ? strategy.timeout : CONFIG.batch.timeout;
  const KEEPALIVE = 64000; // what Chromium lets fetch(keepalive) carry at once, with a margin

  // ---- storage: localStorage values are JSON, cookie values are raw (or JSON-quoted by old
  // versions); both forms are read.
  const memory = {};
  const parse = (v) => {
    if (v == null) return null;
    try { return JSON.parse(v); } catch (_) { return v; }
  };
  const local = {
    get(key) {
      try { return parse(localStorage.getItem(key)); } catch (_) { return parse(memory[key]); }
    },
    set(key, value) {
      const text = value == null ? null : JSON.stringify(value);
      try {
        if (text == null) localStorage.removeItem(key); else localStorage.setItem(key, text);
      } catch (_) { memory[key] = text; }
    },
  };

  // Segment's cookies live on the top domain: the shortest parent domain a cookie can be set on.
  const cookieDomain = (() => {
    const host = location.hostname;
    const wanted = CONFIG.cookie.domain;
    if (wanted) return host === wanted || host.endsWith('.' + wanted) ? wanted : '';
    const parts = host.split('.');
    if (parts.length < 2 || /^[\d.]+$/.test(host) || host.includes(':')) return '';
    for (let i = parts.length - 2; i >= 0; i--) {
      const domain = parts.slice(i).join('.');
      try {
        document.cookie = '__tld__=1; path=/; domain=' + domain;
        if (document.cookie.includes('__tld__=1')) {
          document.cookie = '__tld__=; path=/; max-age=0; domain=' + domain;
          return domain;
        }
      } catch (_) { return ''; }
    }
    return '';
  })();

  const cookies = {
    get(name) {
      try {
        for (const part of document.cookie.split(/;\s*/)) {
          const eq = part.indexOf('=');
          if (part.slice(0, eq) === name) return parse(decodeURIComponent(part.slice(eq + 1)));
        }
      } catch (_) { /* no cookies here (sandboxed frame, bad encoding) */ }
      return null;
    },
    set(name, value) {
      const c = CONFIG.cookie;
      let text = name + '=' + (value == null ? '' : encodeURIComponent(value)) + '; path=/' +
        '; max-age=' + (value == null ? 0 : c.maxAge) + '; SameSite=' + c.sameSite;
      if (cookieDomain) text += '; domain=' + cookieDomain;
      if (c.secure != null ? c.secure : location.protocol === 'https:') text += '; Secure';
      try { document.cookie = text; } catch (_) { /* sandboxed */ }
    },
  };

  // Ids are kept in localStorage and in a cookie; the first one found wins and is copied over.
  const readId = (key) => {
    const stored = local.get(key);
    const baked = cookies.get(key);
    const pick = (v) => (v == null || v === '' || isObj(v) ? null : String(v));
    const id = pick(stored) || pick(baked);
    if (id !== null && (pick(stored) !== id || pick(baked) !== id)) writeId(key, id);
    return id;
  };
  const writeId = (key, id) => {
    local.set(key, id);
    cookies.set(key, id);
  };

  // ---- Google Analytics' ids: _ga = GA1.1.<client id: the last two parts>; _ga_<container> =
  // GS1.1.<session id>.… or GS2.1.s<session id>$o…$g…, the container being the measurement id
  // without its G-.
  const GA4 = 'Google Analytics 4';
  const gaContainer = String(((loadOptions.integrations || {})[GA4] || {}).measurementId || '').replace(/^G-/, '');
  const gaSessionId = (value) => {
    const parts = String(value).split('.');
    const id = parts[0] === 'GS1' ? parts[2]
      : parts[0] === 'GS2' ? ((parts[2] || '').split('$').find((p) => p[0] === 's') || '').slice(1) : '';
    return /^\d+$/.test(id || '') ? id : undefined;
  };
  const gaIds = () => {
    const ga = String(cookies.get('_ga') || '').split('.');
    if (ga.length < 4 || !/^GA\d/.test(ga[0])) return null;
    const ids = {clientId: ga.slice(-2).join('.')};
    let names = [];
    try { names = document.cookie.split(/;\s*/).map((part) => part.split('=')[0]); } catch (_) { /* sandboxed */ }
    for (const name of names) {
      if (gaContainer ? name !== '_ga_' + gaContainer : !name.startsWith('_ga_')) continue;
      const sessionId = gaSessionId(cookies.get(name));
      if (sessionId) return {...ids, sessionId};
    }
    return ids;
  };
  const withGaIds = (integrations) => {
    const given = integrations[GA4];
    if (given === false || given === null || (given === undefined && integrations.All === false)) return integrations;
    const ids = gaIds();
    if (ids) integrations[GA4] = {...ids, ...(isObj(given) ? given : {})};
    return integrations;
  };

  // analytics.user() and analytics.group(): same behaviour as Segment's User and Group.
  class Entity {
    constructor(idKey, traitsKey, isUser) {
      this.idKey = idKey;
      this.traitsKey = traitsKey;
      this.isUser = isUser;
    }

    id(id) {
      const previous = readId(this.idKey);
      if (id !== undefined) {
        writeId(this.idKey, id == null ? null : String(id));
        // A different user on this browser gets a new anonymous id.
        if (this.isUser && previous !== null && id !== null && String(id) !== previous) this.anonymousId(null);
      }
      return readId(this.idKey);
    }

    anonymousId(id) {
      if (!this.isUser) return undefined;
      if (id === undefined) {
        const current = readId('ajs_anonymous_id');
        if (current) return current;
      }
      writeId('ajs_anonymous_id', id === null ? null : String(id || uuid()));
      return readId('ajs_anonymous_id');
    }

    traits(traits) {
      if (traits === null) traits = {};
      if (traits) local.set(this.traitsKey, traits);
      const stored = local.get(this.traitsKey);
      return isObj(stored) ? stored : {};
    }

    identify(id, traits) {
      traits = traits || {};
      const current = this.id();
      if (current === null || current === id) traits = {...this.traits(), ...traits};
      if (id) this.id(id);
      this.traits(traits);
    }

    reset() {
      if (this.isUser) writeId('ajs_anonymous_id', null);
      writeId(this.idKey, null);
      local.set(this.traitsKey, null);
    }
  }
  const user = new Entity('ajs_user_id', 'ajs_user_traits', true);
  const group = new Entity('ajs_group_id', 'ajs_group_properties', false);

  // ---- context, as analytics.js builds it
  const bufferedPage = () => {
    const canonical = document.querySelector("link[rel='canonical']");
    return {c: (canonical && canonical.getAttribute('href')) || undefined, p: location.pathname,
      u: location.href, s: location.search, t: document.title, r: document.referrer};
  };
  const isBufferedPage = (v) => isObj(v) && v.__t === 'bpc';
  const pageContext = ({c, p, u, s, t, r}) => {
    let path = p;
    if (c) {
      try { path = new URL(c).pathname; } catch (_) { path = c[0] === '/' ? c : '/' + c; }
    }
    const url = c ? (c.includes('?') ? c : c + s) : u.split('#')[0];
    return {path, referrer: r, search: s, title: t, url};
  };
  const campaign = (search) => {
    const found = {};
    for (const [key, value] of new URLSearchParams(search)) {
      if (key.startsWith('utm_') && key.length > 4) found[key === 'utm_campaign' ? 'name' : key.slice(4)] = value;
    }
    return Object.keys(found).length ? found : undefined;
  };
  let timezone;
  try { timezone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (_) { /* unknown */ }

  // ---- consent
  const CONSENT_KEY = 'ajs_consent';
  let consent = isObj(local.get(CONSENT_KEY)) ? local.get(CONSENT_KEY) : null;
  const consentOptions = loadOptions.consent || {};
  let holding = !consent && (consentOptions.hold != null ? !!consentOptions.hold : CONFIG.consent.hold);
  const held = [];

  // ---- the delivery queue, kept in localStorage until the collector accepts each event
  const QUEUE_KEY = 'ajs_collector_queue:' + writeKey;
  const RETRY = [408, 410, 429, 460];
  let pending = []; // events the collector has not accepted, oldest first
  const inFlight = new Map(); // messageId -> true when sent with keepalive
  const finished = new Set(); // messageIds accepted or dropped since the last save
  let attempts = 0;
  let retryAt = 0;
  let timer = 0;
  let timerAt = 0;
  let keepaliveBytes = 0;
  const size = (text) => new TextEncoder().encode(text).length;

  // Merges with what other tabs saved, so none loses the others' events (duplicates are
  // dropped by the collector, which dedups on messageId).
  function save() {
    const stored = local.get(QUEUE_KEY) || {};
    const byId = new Map();
    const oldest = new Date(now() - CONFIG.queue.maxAge).toISOString();
    for (const event of [...(stored.events || []), ...pending]) {
      if (event && !finished.has(event.messageId) && !(event.timestamp < oldest)) byId.set(event.messageId, event);
    }
    finished.clear();
    const events = [...byId.values()].sort((a, b) => (a.timestamp < b.timestamp ? -1 : 1)).slice(-CONFIG.queue.max);
    const keep = new Set(events.map((e) => e.messageId));
    pending = pending.filter((e) => keep.has(e.messageId)).sort((a, b) => (a.timestamp < b.timestamp ? -1 : 1));
    local.set(QUEUE_KEY, events.length || attempts ? {events, attempts, retryAt} : null);
  }

  function forget(ids) {
    const gone = new Set(ids);
    pending = pending.filter((e) => !gone.has(e.messageId));
    ids.forEach((id) => finished.add(id));
  }

  function enqueue(event) {
    pending.push(event);
    save();
    schedule();
  }

  function schedule() {
    const waiting = pending.filter((e) => !inFlight.has(e.messageId)).length;
    if (!waiting || inFlight.size) return; // a request's answer schedules the next one
    const at = Math.max(retryAt, now() + (waiting >= BATCH_SIZE ? 0 : BATCH_WAIT));
    if (timer && timerAt <= at) return;
    clearTimeout(timer);
    timerAt = at;
    timer = setTimeout(() => { timer = 0; flush(false); }, at - now());
  }

  // Sends what waits: one request at a time normally; everything that fits in keepalive
  // requests when the page goes away.
  function flush(leaving) {
    if (leaving ? navigator.onLine === false : inFlight.size || now() < retryAt) return schedule();
    let batch = [];
    let bytes = 0;
    const batches = [];
    for (const event of pending) {
      if (inFlight.has(event.messageId)) continue;
      const eventBytes = size(JSON.stringify(event)) + 1;
      if (batch.length && (batch.length >= BATCH_SIZE || bytes + eventBytes > CONFIG.batch.bytes)) {
        batches.push(batch);
        batch = [];
        bytes = 0;
      }
      batch.push(event);
      bytes += eventBytes;
    }
    if (batch.length) batches.push(batch);
    for (const b of leaving ? batches : batches.slice(0, 1)) {
      if (!send(b, leaving) && leaving) break;
    }
    // A page going away cannot read the answers: if the collector was fine so far, what is
    // travelling with keepalive counts as delivered (the browser finishes those requests).
    // After failures, the events stay stored and the next page sends them again.
    if (leaving && !attempts) {
      forget([...inFlight].filter(([, keepalive]) => keepalive).map(([id]) => id));
      save();
    }
  }

  function send(batch, leaving) {
    const body = JSON.stringify({batch, sentAt: new Date().toISOString(), writeKey});
    const bytes = size(body);
    const keepalive = bytes + keepaliveBytes <= KEEPALIVE;
    if (leaving && !keepalive) return false;
    const ids = batch.map((e) => e.messageId);
    ids.forEach((id) => inFlight.set(id, keepalive));
    if (keepalive) keepaliveBytes += bytes;
    log('sending', batch.length, 'events');
    fetch(API + '/b', {
      method: 'POST', body, keepalive, headers: {'Content-Type': 'text/plain'},
      credentials: CONFIG.cookie.credentials ? 'include' : 'omit',
    }).then((response) => [response.status, response.headers.get('Retry-After')], (error) => {
      log('network error', error);
      return [0, null];
    }).then(([status, retryAfter]) => {
      ids.forEach((id) => inFlight.delete(id));
      if (keepalive) keepaliveBytes -= bytes;
      const retry = !status || RETRY.includes(status) || (status >= 500 && status !== 501 && status !== 505);
      if (!retry) {
        if (status >= 400) log('collector refused the events for good:', status);
        forget(ids);
        if (status < 400) attempts = retryAt = 0;
      } else {
        // Events a leaving page counted as delivered come back.
        for (const event of batch) {
          finished.delete(event.messageId);
          if (!pending.some((e) => e.messageId === event.messageId)) pending.push(event);
        }
        attempts++;
        let wait = Math.min(CONFIG.queue.maxBackoff, 1000 * 2 ** (attempts - 1)) * (0.8 + Math.random() * 0.4);
        if (retryAfter) {
          const seconds = Number(retryAfter);
          wait = Math.min(300000, Math.max(0, isNaN(seconds) ? Date.parse(retryAfter) - now() : seconds * 1000)) || wait;
        }
        retryAt = now() + wait;
        log('will retry in', Math.round(wait), 'ms; status', status);
      }
      save();
      schedule();
    });
    return true;
  }

  const leave = () => flush(true);
  addEventListener('pagehide', leave);
  document.addEventListener('visibilitychange', () => document.visibilityState === 'hidden' && leave());
  addEventListener('online', () => { retryAt = 0; schedule(); });

  // ---- arguments as analytics.js reads them
  const splitCallback = (args) => {
    args = [...args];
    if (isBufferedPage(args[args.length - 1])) args.pop();
    const callback = args.find(isFn);
    return [args.filter((a) => !isFn(a)), callback];
  };
  const pageArgs = (args) => {
    const [rest, callback] = splitCallback(args);
    const strings = rest.filter((a) => typeof a === 'string');
    const category = strings.length > 1 ? strings[0] : null;
    const name = strings.length > 1 ? strings[1] : strings.length ? strings[0] : null;
    const objects = rest.filter((a) => isObj(a) || (name !== null && a === null));
    return [category, name, objects[0] || {}, objects[1] || {}, callback];
  };
  const toList = (x) => (!x ? [] : x.nodeType ? [x] : Array.from(x));
  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // ---- middleware and plugins
  const sourceMiddleware = [];
  const destinationMiddleware = []; // for 'Segment.io', the collector
  const plugins = [];
  let setupDone = Promise.resolve();
  // Events go through plugins and middleware one after the other, so they keep their order; a
  // step that has not answered within STEP_TIMEOUT ms lets the next event go (middleware that
  // never calls next() drops its event).
  let chain = Promise.resolve();
  const STEP_TIMEOUT = 1000;
  const timeout = (promise, fallback) => Promise.race([promise, sleep(STEP_TIMEOUT).then(() => fallback)]);

  const runMiddleware = async (list, event) => {
    for (const fn of list) {
      if (!event) return null;
      event = await timeout(new Promise((resolve) => {
        const payload = {obj: event, type: () => event.type, event: () => event.event};
        try {
          fn({payload, integrations: {}, integration: 'Segment.io',
            next: (p) => resolve(p ? p.obj || p : null)});
        } catch (error) {
          log('middleware failed', error);
          resolve(event);
        }
      }), null);
    }
    return event;
  };
  const pluginContext = (event) => ({
    event,
    updateEvent(path, value) {
      const keys = path.split('.');
      let target = this.event;
      keys.slice(0, -1).forEach((k) => { target = isObj(target[k]) ? target[k] : (target[k] = {}); });
      target[keys[keys.length - 1]] = value;
      return this.event;
    },
  });

  // ---- the analytics object that replaces the snippet's array
  const listeners = {};

  class Analytics {
    constructor() {
      this.initialized = true;
      this.VERSION = CONFIG.version;
      this._writeKey = writeKey;
      this._cdn = CONFIG.origin;
      this.SNIPPET_VERSION = buffered && buffered.SNIPPET_VERSION;
    }

    initialize() { return Promise.resolve(this); }
    load() { return this; }
    user() { return user; }
    debug(on) { debugging = on !== false; return this; }

    on(name, fn) { (listeners[name] = listeners[name] || []).push(fn); return this; }
    off(name, fn) { listeners[name] = (listeners[name] || []).filter((f) => f !== fn && f.fn !== fn); return this; }
    once(name, fn) {
      const wrapper = (...args) => { this.off(name, wrapper); fn.apply(this, args); };
      wrapper.fn = fn;
      return this.on(name, wrapper);
    }
    emit(name, ...args) {
      for (const fn of [...(listeners[name] || [])]) {
        try { fn.apply(this, args); } catch (error) { log('listener failed', error); }
      }
      return this;
    }

    ready(callback) {
      return setupDone.then(() => { if (isFn(callback)) callback(); return this; });
    }

    // Builds an event like analytics.js: options keys userId/anonymousId/timestamp/messageId go
    // on the event, integrations to integrations, anything else into context.
    _event(type, fields, options, page) {
      options = isObj(options) ? {...options} : {};
      if (options.anonymousId) user.anonymousId(options.anonymousId);
      const context = isObj(options.context) ? {...options.context} : {};
      const event = {type, ...fields};
      for (const [key, value] of Object.entries(options)) {
        if (key === 'context' || key === 'integrations' || value === undefined) continue;
        if (['userId', 'anonymousId', 'timestamp', 'messageId'].includes(key)) event[key] = value;
        else context[key] = value;
      }
      const pageCtx = pageContext(page || bufferedPage());
      if (type === 'page') {
        const fromProperties = {};
        for (const key of Object.keys(pageCtx)) if (key in event.properties) fromProperties[key] = event.properties[key];
        event.properties = {...pageCtx, ...event.properties, ...(event.name ? {name: event.name} : {})};
        context.page = {...pageCtx, ...fromProperties, ...context.page};
      } else {
        context.page = {...pageCtx, ...context.page};
      }
      context.userAgent = navigator.userAgent;
      const uaData = navigator.userAgentData;
      if (uaData) context.userAgentData = {brands: uaData.brands, mobile: uaData.mobile, platform: uaData.platform};
      if (context.locale === undefined) context.locale = navigator.language;
      context.library = context.library || {name: 'analytics.js', version: 'collector-' + CONFIG.version};
      if (!context.campaign) {
        const utm = campaign(context.page.search || '');
        if (utm) context.campaign = utm;
      }
      if (timezone) context.timezone = timezone;
      context.screen = {width: screen.width, height: screen.height, density: devicePixelRatio};
      if (consent && !context.consent) context.consent = {categoryPreferences: {...consent}};
      const full = {
        timestamp: new Date(),
        integrations: withGaIds({...options.integrations}),
        ...event,
        userId: event.userId !== undefined ? event.userId : user.id(),
        anonymousId: event.anonymousId || user.anonymousId(),
        context,
        messageId: event.messageId || 'ajs-next-' + now() + '-' + uuid(),
      };
      const time = new Date(full.timestamp);
      full.timestamp = isNaN(time) ? new Date().toISOString() : time.toISOString();
      return full;
    }

    // Runs an event through plugins and middleware, then queues (or holds) it.
    _dispatch(event, callback, emitArgs) {
      const done = chain.then(() => setupDone).then(async () => {
        let ctx = pluginContext(event);
        for (const type of ['before', 'enrichment']) {
          for (const plugin of plugins.filter((p) => p.type === type && isFn(p[event.type]))) {
            try { ctx = (await timeout(plugin[event.type](ctx), ctx)) || ctx; } catch (error) { log('plugin failed', error); }
          }
        }
        let final = await runMiddleware(sourceMiddleware, ctx.event);
        if (final) {
          this.emit(event.type, ...emitArgs);
          for (const plugin of plugins.filter((p) => p.type === 'destination' && isFn(p[event.type]))) {
            Promise.resolve().then(() => plugin[event.type](pluginContext(JSON.parse(JSON.stringify(final))))).catch(log);
          }
          final = await runMiddleware(destinationMiddleware, final);
        }
        if (final) {
          if (holding) held.push(final); else enqueue(final);
          ctx.event = final;
          for (const plugin of plugins.filter((p) => p.type === 'after' && isFn(p[event.type]))) {
            Promise.resolve().then(() => plugin[event.type](ctx)).catch(log);
          }
        }
        if (isFn(callback)) {
          try { callback(ctx); } catch (error) { log('callback failed', error); }
        }
        return ctx;
      });
      chain = done.catch(log);
      return done;
    }

    track(...args) {
      const page = args.find(isBufferedPage);
      const [[name, properties, options], callback] = splitCallback(args);
      const props = isObj(properties) ? properties : {};
      const event = this._event('track', {event: name, properties: props}, options, page);
      return this._dispatch(event, callback, [name, props, options]);
    }

    page(...args) { return this._page('page', args); }
    screen(...args) { return this._page('screen', args); }
    _page(type, args) {
      const page = args.find(isBufferedPage);
      const [category, name, properties, options, callback] = pageArgs(args);
      const fields = {properties: {...properties}};
      if (category !== null) {
        fields.category = category;
        if (type === 'page') fields.properties.category = category;
      }
      if (name !== null) fields.name = name;
      return this._dispatch(this._event(type, fields, options, page), callback, [category, name, properties, options]);
    }

    pageview(url) { return this.page(url ? {path: url} : {}); }

    identify(...args) {
      const page = args.find(isBufferedPage);
      let [[id, traits, options], callback] = splitCallback(args);
      if (isObj(id) || id === null) [id, traits, options] = [undefined, id || traits, isObj(id) ? traits : options];
      user.identify(id == null ? user.id() : String(id), isObj(traits) ? traits : {});
      const event = this._event('identify', {userId: user.id(), traits: user.traits()}, options, page);
      return this._dispatch(event, callback, [user.id(), user.traits(), options]);
    }

    group(...args) {
      if (!args.length) return group;
      const page = args.find(isBufferedPage);
      let [[id, traits, options], callback] = splitCallback(args);
      if (isObj(id)) [id, traits, options] = [undefined, id, traits];
      group.identify(id == null ? group.id() : String(id), isObj(traits) ? traits : {});
      const event = this._event('group', {groupId: group.id(), traits: group.traits()}, options, page);
      return this._dispatch(event, callback, [group.id(), group.traits(), options]);
    }

    alias(...args) {
      const page = args.find(isBufferedPage);
      let [[to, from, options], callback] = splitCallback(args);
      if (isObj(from)) [from, options] = [undefined, from];
      const previousId = from != null ? String(from) : user.id() || user.anonymousId();
      const event = this._event('alias', {userId: to == null ? user.id() : String(to), previousId}, options, page);
      return this._dispatch(event, callback, [to, previousId, options]);
    }

    reset() {
      user.reset();
      group.reset();
      this.emit('reset');
      return this;
    }

    setAnonymousId(id) { return user.anonymousId(id); }

    // Tracks clicks on links; the browser follows the link once the event is stored (at most 300 ms).
    trackLink(links, event, properties) {
      for (const el of toList(links)) {
        el.addEventListener('click', (e) => {
          const name = isFn(event) ? event(el) : event;
          const props = isFn(properties) ? properties(el) : properties;
          const href = el.href && (el.href.baseVal || el.href);
          const done = this.track(name, props);
          const newTab = el.target === '_blank' || e.metaKey || e.ctrlKey || e.shiftKey;
          if (typeof href === 'string' && href && !newTab && !e.defaultPrevented) {
            e.preventDefault();
            Promise.race([done, sleep(300)]).then(() => { location.href = href; });
          }
        });
      }
      return this;
    }

    trackForm(forms, event, properties) {
      for (const form of toList(forms)) {
        form.addEventListener('submit', (e) => {
          const name = isFn(event) ? event(form) : event;
          const props = isFn(properties) ? properties(form) : properties;
          e.preventDefault();
          Promise.race([this.track(name, props), sleep(300)]).then(() => HTMLFormElement.prototype.submit.call(form));
        });
      }
      return this;
    }

    addSourceMiddleware(fn) { sourceMiddleware.push(fn); return this; }
    addIntegrationMiddleware(fn) { destinationMiddleware.push(fn); return this; }
    addDestinationMiddleware(name, ...fns) {
      if (name === 'Segment.io' || name === '*') destinationMiddleware.push(...fns);
      return this;
    }

    // analytics-next plugins: {name, type: before|enrichment|destination|after|utility, load(ctx,
    // analytics), track(ctx), page(ctx), ...}.
    register(...list) {
      return Promise.all(list.map(async (plugin) => {
        try {
          if (isFn(plugin.load)) await plugin.load(pluginContext({}), this);
          plugins.push(plugin);
        } catch (error) { log('plugin failed to load', plugin.name, error); }
      })).then(() => pluginContext({}));
    }
    deregister(...names) {
      for (const name of names) {
        const i = plugins.findIndex((p) => p.name === name);
        if (i >= 0 && isFn(plugins[i].unload)) plugins[i].unload(pluginContext({}), this);
        if (i >= 0) plugins.splice(i, 1);
      }
      return Promise.resolve(pluginContext({}));
    }

    consent() { return consent && {...consent}; }

    setConsent(preferences) {
      if (preferences === null) {
        consent = null;
        local.set(CONSENT_KEY, null);
        holding = consentOptions.hold != null ? !!consentOptions.hold : CONFIG.consent.hold;
        this.emit('consent', null);
        return Promise.resolve(null);
      }
      const full = {};
      CONFIG.consent.categories.forEach((c) => { full[c] = false; });
      Object.entries(preferences || {}).forEach(([c, granted]) => { full[c] = !!granted; });
      const changed = JSON.stringify(full) !== JSON.stringify(consent);
      consent = full;
      local.set(CONSENT_KEY, full);
      holding = false;
      for (const event of held.splice(0)) {
        if (!event.context.consent) event.context.consent = {categoryPreferences: {...full}};
        enqueue(event);
      }
      this.emit('consent', {...full});
      if (changed) return this.track('Segment Consent Preference Updated', {});
      return Promise.resolve(pluginContext({}));
    }
  }
  Analytics.prototype.trackClick = Analytics.prototype.trackLink;
  Analytics.prototype.trackSubmit = Analytics.prototype.trackForm;

  // ---- start: take over from the snippet, then replay its queued calls
  const analytics = new Analytics();
  window[KEY] = analytics;

  const stored = local.get(QUEUE_KEY);
  if (isObj(stored)) {
    pending = (stored.events || []).filter(isObj);
    attempts = stored.attempts || 0;
    retryAt = stored.retryAt || 0;
  }

  const calls = Array.isArray(buffered) ? buffered.filter(Array.isArray) : [];
  const SETUP = ['register', 'addSourceMiddleware', 'addDestinationMiddleware', 'addIntegrationMiddleware',
    'on', 'once', 'debug', 'setAnonymousId'];
  const replay = ([method, ...args]) => {
    if (!isFn(analytics[method]) || method === 'load' || method[0] === '_') return undefined;
    try { return analytics[method](...args); } catch (error) { log('replayed call failed', method, error); }
    return undefined;
  };
  const setup = calls.filter((c) => SETUP.includes(c[0])).map(replay);
  setupDone = Promise.all(setup).then(() => undefined, () => undefined);
  if (consentOptions.categoryPreferences) analytics.setConsent(consentOptions.categoryPreferences);
  calls.filter((c) => !SETUP.includes(c[0])).forEach(replay);
  setupDone.then(() => analytics.emit('initialize', loadOptions).emit('ready'));
  schedule();
})();
