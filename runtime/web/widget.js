/*
 * parley web chat widget — served by parley at /v1/bots/{bot}/widget.js.
 *
 * A shop embeds it with one tag:
 *   <script src="https://PARLEY-HOST/v1/bots/{bot}/widget.js" async></script>
 *
 * It draws a chat bubble in the corner that opens a chat panel, sends the
 * shopper's messages with POST .../webchat/messages (one at a time, in order,
 * waiting out a 429's Retry-After) and receives the whole conversation (the
 * bot, proactive messages, a human agent, payments) over Server-Sent Events
 * from .../webchat/events. Opening the panel on an empty conversation asks
 * the bot for its greeting (an "open" event) where the bot greets on open. Everything lives in one Shadow DOM root so
 * the shop's CSS cannot reach in and ours cannot leak out. No framework, no
 * external requests: the only images are the bot's avatar and the images its
 * replies name. Message text is only ever put in the page as text nodes.
 *
 * Browser storage (all keyed by bot):
 *   localStorage   parley-{bot}-user   the shopper's id (32 random hex chars)
 *   localStorage   parley-{bot}-read   the last bot line the shopper has seen (for the unread badge)
 *   sessionStorage parley-{bot}-open   whether the panel was open (a reload keeps it so)
 *   sessionStorage parley-{bot}-outbox the shopper's messages parley has not accepted yet (each with
 *                                      its id), sent from the next page when the shopper moves on
 *
 * For tests: window.parleyWidget = {open(), close(), user, bot}.
 */
(function () {
  'use strict';

  const DEFAULT_ACCENT = '#6b3e26'; // a warm coffee brown
  const TYPING_MS = 15000;          // the typing dots give up after this long
  const MAX_TEXT_BYTES = 4096;      // the server's limit for a message's text
  const RTL_LANGS = ['ar', 'he', 'iw', 'fa', 'ur', 'yi', 'ps', 'sd', 'ug', 'ckb', 'dv'];

  /* --- where we were loaded from ------------------------------------------------------------ */

  // The script's own URL tells us the parley host (and any path prefix a proxy
  // adds) and the bot: .../v1/bots/{bot}/widget.js. We talk only to that origin.
  const SRC_RE = /^(https?:\/\/[^?#]*?)\/v1\/bots\/([a-z0-9_-]+)\/widget\.js(?:[?#].*)?$/;

  function ownScript() {
    if (document.currentScript && SRC_RE.test(document.currentScript.src)) return document.currentScript;
    // currentScript is null when we run late (e.g. injected by a tag manager): find our tag.
    const tags = Array.from(document.getElementsByTagName('script')).reverse();
    return tags.find((s) => SRC_RE.test(s.src)) || null;
  }

  const script = ownScript();
  const where = script && SRC_RE.exec(script.src);
  if (!where) {
    console.warn('parley: widget.js must be loaded from .../v1/bots/{bot}/widget.js');
    return;
  }
  const BASE = where[1];
  const BOT = where[2];
  const api = (path) => BASE + '/v1/bots/' + BOT + '/webchat/' + path;

  /* --- storage (private modes and sandboxed frames may refuse it) ---------------------------- */

  function storage(kind) {
    const memory = {};
    let real = null;
    try {
      real = window[kind];
      real.setItem('parley-probe', '1');
      real.removeItem('parley-probe');
    } catch (e) {
      real = null; // fall back to memory: the chat works, it just doesn't survive a reload
    }
    return {
      get(key) {
        try {
          if (real) return real.getItem(key);
        } catch (e) { /* fall through */ }
        return Object.prototype.hasOwnProperty.call(memory, key) ? memory[key] : null;
      },
      set(key, value) {
        memory[key] = String(value);
        try {
          if (real) real.setItem(key, String(value));
        } catch (e) { /* quota or policy: memory keeps it for this page */ }
      },
      remove(key) {
        delete memory[key];
        try {
          if (real) real.removeItem(key);
        } catch (e) { /* as above */ }
      },
    };
  }

  const local = storage('localStorage');
  const session = storage('sessionStorage');
  const KEY_USER = 'parley-' + BOT + '-user';
  const KEY_READ = 'parley-' + BOT + '-read';
  const KEY_OPEN = 'parley-' + BOT + '-open';
  const KEY_OUTBOX = 'parley-' + BOT + '-outbox';
  // A message parley keeps saying "not yet" to (429, 503) is given back to the shopper after this.
  const MAX_WAIT_MS = 3 * 60 * 1000;

  function randomId() {
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
  }

  /* --- words of the widget itself (the bot's words come from the bot) ------------------------ */

  const STRINGS = {
    en: {
      open: 'Open chat with {title}', dialog: 'Chat with {title}', close: 'Close chat', messages: 'Messages',
      input: 'Message', placeholder: 'Write a message…', send: 'Send', you: 'You', typing: '{title} is typing…',
      reconnecting: 'Reconnecting…',
      failed: 'Your message could not be sent. Please try again.', tooLong: 'That message is too long.',
      unread: 'Unread messages: {n}', products: 'Products', choose: 'Choose', empty: 'Write a message to start the conversation.',
      opensNew: '(opens in a new tab)',
      sendingIn: 'Sending in {n} s…', waiting: 'Your message will be sent in {n} seconds.', paid: 'Paid', paidLabel: 'Paid {amount}',
    },
    ja: {
      open: '{title}とのチャットを開く', dialog: '{title}とのチャット', close: 'チャットを閉じる', messages: 'メッセージ',
      input: 'メッセージ', placeholder: 'メッセージを入力…', send: '送信', you: 'あなた', typing: '{title}が入力中…',
      reconnecting: '再接続しています…',
      failed: 'メッセージを送信できませんでした。もう一度お試しください。', tooLong: 'メッセージが長すぎます。',
      unread: '未読メッセージ：{n}件', products: '商品', choose: '選ぶ', empty: 'メッセージを送って会話を始めましょう。',
      opensNew: '（新しいタブで開きます）',
      sendingIn: '{n}秒後に送信します…', waiting: 'メッセージは{n}秒後に送信されます。', paid: '支払い済み', paidLabel: '{amount} 支払い済み',
    },
    zh: {
      open: '打开与{title}的聊天', dialog: '与{title}聊天', close: '关闭聊天', messages: '消息',
      input: '消息', placeholder: '输入消息…', send: '发送', you: '你', typing: '{title}正在输入…',
      reconnecting: '正在重新连接…', failed: '消息发送失败，请重试。',
      tooLong: '消息太长。', unread: '未读消息：{n}', products: '商品', choose: '选择', empty: '发送消息开始对话。',
      opensNew: '（在新标签页中打开）',
      sendingIn: '{n} 秒后发送…', waiting: '您的消息将在 {n} 秒后发送。', paid: '已支付', paidLabel: '已支付 {amount}',
    },
    ko: {
      open: '{title} 채팅 열기', dialog: '{title} 채팅', close: '채팅 닫기', messages: '메시지',
      input: '메시지', placeholder: '메시지를 입력하세요…', send: '보내기', you: '나', typing: '{title} 입력 중…',
      reconnecting: '다시 연결하는 중…',
      failed: '메시지를 보내지 못했어요. 다시 시도해 주세요.', tooLong: '메시지가 너무 깁니다.',
      unread: '읽지 않은 메시지: {n}', products: '상품', choose: '선택', empty: '메시지를 보내 대화를 시작하세요.',
      opensNew: '(새 탭에서 열림)',
      sendingIn: '{n}초 후 전송…', waiting: '메시지가 {n}초 후에 전송됩니다.', paid: '결제 완료', paidLabel: '{amount} 결제 완료',
    },
    ar: {
      open: 'فتح المحادثة مع {title}', dialog: 'محادثة مع {title}', close: 'إغلاق المحادثة', messages: 'الرسائل',
      input: 'الرسالة', placeholder: 'اكتب رسالة…', send: 'إرسال', you: 'أنت', typing: '{title} يكتب…',
      reconnecting: 'جارٍ إعادة الاتصال…',
      failed: 'تعذّر إرسال رسالتك. يرجى المحاولة مرة أخرى.', tooLong: 'الرسالة طويلة جدًا.',
      unread: 'رسائل غير مقروءة: {n}', products: 'المنتجات', choose: 'اختيار', empty: 'اكتب رسالة لبدء المحادثة.',
      opensNew: '(يُفتح في علامة تبويب جديدة)',
      sendingIn: 'الإرسال خلال {n} ث…', waiting: 'ستُرسل رسالتك خلال {n} ثانية.', paid: 'تم الدفع', paidLabel: 'تم دفع {amount}',
    },
    he: {
      open: "פתיחת צ'אט עם {title}", dialog: "צ'אט עם {title}", close: "סגירת הצ'אט", messages: 'הודעות',
      input: 'הודעה', placeholder: 'כתבו הודעה…', send: 'שליחה', you: 'אני', typing: '{title} מקלידים…',
      reconnecting: 'מתחברים מחדש…',
      failed: 'לא ניתן היה לשלוח את ההודעה. נא לנסות שוב.', tooLong: 'ההודעה ארוכה מדי.',
      unread: 'הודעות שלא נקראו: {n}', products: 'מוצרים', choose: 'בחירה', empty: 'כתבו הודעה כדי להתחיל בשיחה.',
      opensNew: '(נפתח בכרטיסייה חדשה)',
      sendingIn: 'נשלח בעוד {n} שנ׳…', waiting: 'ההודעה תישלח בעוד {n} שניות.', paid: 'שולם', paidLabel: 'שולם {amount}',
    },
    de: {
      open: 'Chat mit {title} öffnen', dialog: 'Chat mit {title}', close: 'Chat schließen', messages: 'Nachrichten',
      input: 'Nachricht', placeholder: 'Nachricht schreiben…', send: 'Senden', you: 'Sie', typing: '{title} schreibt…',
      reconnecting: 'Verbindung wird wiederhergestellt…',
      failed: 'Ihre Nachricht konnte nicht gesendet werden. Bitte versuchen Sie es erneut.', tooLong: 'Die Nachricht ist zu lang.',
      unread: 'Ungelesene Nachrichten: {n}', products: 'Produkte', choose: 'Auswählen', empty: 'Schreiben Sie eine Nachricht, um zu beginnen.',
      opensNew: '(öffnet in neuem Tab)',
      sendingIn: 'Wird in {n} s gesendet…', waiting: 'Ihre Nachricht wird in {n} Sekunden gesendet.', paid: 'Bezahlt', paidLabel: '{amount} bezahlt',
    },
    fr: {
      open: 'Ouvrir le chat avec {title}', dialog: 'Chat avec {title}', close: 'Fermer le chat', messages: 'Messages',
      input: 'Message', placeholder: 'Écrivez un message…', send: 'Envoyer', you: 'Vous', typing: '{title} écrit…',
      reconnecting: 'Reconnexion…',
      failed: "Votre message n'a pas pu être envoyé. Réessayez.", tooLong: 'Ce message est trop long.',
      unread: 'Messages non lus : {n}', products: 'Produits', choose: 'Choisir', empty: 'Écrivez un message pour commencer.',
      opensNew: '(s’ouvre dans un nouvel onglet)',
      sendingIn: 'Envoi dans {n} s…', waiting: 'Votre message sera envoyé dans {n} secondes.', paid: 'Payé', paidLabel: '{amount} payé',
    },
    es: {
      open: 'Abrir chat con {title}', dialog: 'Chat con {title}', close: 'Cerrar chat', messages: 'Mensajes',
      input: 'Mensaje', placeholder: 'Escribe un mensaje…', send: 'Enviar', you: 'Tú', typing: '{title} está escribiendo…',
      reconnecting: 'Reconectando…',
      failed: 'No se pudo enviar tu mensaje. Inténtalo de nuevo.', tooLong: 'El mensaje es demasiado largo.',
      unread: 'Mensajes sin leer: {n}', products: 'Productos', choose: 'Elegir', empty: 'Escribe un mensaje para empezar.',
      opensNew: '(se abre en una pestaña nueva)',
      sendingIn: 'Enviando en {n} s…', waiting: 'Tu mensaje se enviará en {n} segundos.', paid: 'Pagado', paidLabel: '{amount} pagado',
    },
  };

  /* --- the shopper's language and direction --------------------------------------------------- */

  const primary = (tag) => String(tag || '').toLowerCase().split(/[-_]/)[0];

  function validTag(tag) {
    try {
      return Intl.getCanonicalLocales(tag)[0] || null;
    } catch (e) {
      return null;
    }
  }

  // The page's language first (the shop's language switcher sets it), then the browser's.
  function wantedLanguages() {
    const list = [document.documentElement.lang].concat(navigator.languages || [navigator.language]);
    return list.map(validTag).filter(Boolean);
  }

  // The bot locale to speak: an exact match (en-GB = en-GB), else the same language (en-GB -> en).
  function matchLocale(wanted, locales, fallback) {
    const have = (locales || []).filter((l) => typeof l === 'string');
    for (const w of wanted) {
      const exact = have.find((l) => l.toLowerCase().replace('_', '-') === w.toLowerCase());
      if (exact) return exact;
      const same = have.find((l) => primary(l) === primary(w));
      if (same) return same;
    }
    return fallback || have[0] || 'en';
  }

  function pageIsRtl(lang) {
    const html = document.documentElement;
    if ((html.getAttribute('dir') || '').toLowerCase() === 'rtl') return true;
    if (document.body && (document.body.getAttribute('dir') || '').toLowerCase() === 'rtl') return true;
    return RTL_LANGS.indexOf(primary(lang)) >= 0;
  }

  /* --- small DOM helpers (text only: never innerHTML) ------------------------------------------- */

  function h(tag, props, children) {
    const el = document.createElement(tag);
    for (const k in props || {}) {
      const v = props[k];
      if (v == null || v === false) continue;
      if (k === 'class') el.className = v;
      else if (k === 'text') el.textContent = v;
      else if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else el.setAttribute(k, v === true ? '' : v);
    }
    for (const c of [].concat(children || [])) if (c != null) el.append(c);
    return el;
  }

  const SVG_NS = 'http://www.w3.org/2000/svg';
  const ICONS = {
    chat: 'M20 2H4a2 2 0 0 0-2 2v18l4-4h14a2 2 0 0 0 2-2V4a2 2 0 0 0-2-2zM6 9h12v2H6V9zm8 5H6v-2h8v2zm4-6H6V6h12v2z',
    down: 'M7.41 8.59 12 13.17l4.59-4.58L18 10l-6 6-6-6 1.41-1.41z',
    close: 'M19 6.41 17.59 5 12 10.59 6.41 5 5 6.41 10.59 12 5 17.59 6.41 19 12 13.41 17.59 19 19 17.59 13.41 12z',
    send: 'M2.01 21 23 12 2.01 3 2 10l15 2-15 2z',
    external: 'M19 19H5V5h7V3H5a2 2 0 0 0-2 2v14a2 2 0 0 0 2 2h14c1.1 0 2-.9 2-2v-7h-2v7zM14 3v2h3.59l-9.83 9.83 1.41 1.41L19 6.41V10h2V3h-7z',
  };

  function icon(name, cls) {
    const svg = document.createElementNS(SVG_NS, 'svg');
    svg.setAttribute('viewBox', '0 0 24 24');
    svg.setAttribute('aria-hidden', 'true');
    svg.setAttribute('focusable', 'false');
    if (cls) svg.setAttribute('class', cls);
    const path = document.createElementNS(SVG_NS, 'path');
    path.setAttribute('d', ICONS[name]);
    svg.append(path);
    return svg;
  }

  // Only web addresses become links or images; javascript:, data: and the like never do.
  function safeUrl(url) {
    if (typeof url !== 'string' || !url) return null;
    try {
      const u = new URL(url, BASE + '/');
      return u.protocol === 'https:' || u.protocol === 'http:' ? u.href : null;
    } catch (e) {
      return null;
    }
  }

  // Text with URLs as links: built from text nodes and <a> elements. A URL ends at the first
  // character that cannot be in one (Japanese text often runs straight on after a URL), and
  // trailing punctuation of the sentence is not part of it.
  const URL_RE = /https?:\/\/[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=%]+/g;

  function linkified(text) {
    const frag = document.createDocumentFragment();
    let last = 0;
    let m;
    URL_RE.lastIndex = 0;
    while ((m = URL_RE.exec(text))) {
      let url = m[0];
      while (/[.,;:!?'"]$/.test(url) || (/\)$/.test(url) && count(url, '(') < count(url, ')'))) url = url.slice(0, -1);
      const href = safeUrl(url);
      if (!href) continue;
      frag.append(text.slice(last, m.index), h('a', { href, target: '_blank', rel: 'noopener noreferrer', text: url }));
      last = m.index + url.length;
    }
    frag.append(text.slice(last));
    return frag;
  }

  const count = (s, ch) => s.split(ch).length - 1;

  /* --- colours ------------------------------------------------------------------------------------ */

  function luminance(rgb) {
    const c = rgb.map((v) => {
      v /= 255;
      return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
    });
    return 0.2126 * c[0] + 0.7152 * c[1] + 0.0722 * c[2];
  }

  function contrast(a, b) {
    const la = luminance(a), lb = luminance(b);
    return (Math.max(la, lb) + 0.05) / (Math.min(la, lb) + 0.05);
  }

  // The merchant picks any accent; we pick readable text for it: white or near-black on the
  // accent, and the accent itself as text on white only where it is dark enough (WCAG AA).
  function palette(accent, probeParent) {
    const ok = typeof accent === 'string' && accent && window.CSS && CSS.supports('color', accent);
    const color = ok ? accent : DEFAULT_ACCENT;
    const probe = h('span');
    probe.style.color = color;
    probeParent.append(probe);
    const rgb = (getComputedStyle(probe).color.match(/[\d.]+/g) || [107, 62, 38]).slice(0, 3).map(Number);
    probe.remove();
    const white = [255, 255, 255], ink = [31, 31, 31];
    return {
      accent: color,
      onAccent: contrast(rgb, white) >= 4.5 ? '#ffffff' : contrast(rgb, white) >= contrast(rgb, ink) ? '#ffffff' : '#1f1f1f',
      accentInk: contrast(rgb, white) >= 4.5 ? color : '#1f1f1f',
    };
  }

  /* --- the stylesheet --------------------------------------------------------------------------- */

  const CSS_TEXT = `
/* !important: for important rules the shadow root beats the page, so no page rule can
   move, hide or transform the host (a transform would break position: fixed). */
:host { all: initial !important; }
.root {
  font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", "Noto Sans",
    "Hiragino Sans", "Hiragino Kaku Gothic ProN", "Yu Gothic UI", "Noto Sans CJK JP", "PingFang SC",
    "Microsoft YaHei", "Noto Sans Arabic", Tahoma, Arial, sans-serif,
    "Apple Color Emoji", "Segoe UI Emoji", "Noto Color Emoji";
  color: #1f1f1f;
  -webkit-text-size-adjust: 100%;
  text-size-adjust: 100%;
}
*, *::before, *::after { box-sizing: border-box; }
[hidden] { display: none !important; }
button { font: inherit; margin: 0; }
svg { fill: currentColor; display: block; }
.sr {
  position: absolute !important; width: 1px; height: 1px; padding: 0; margin: -1px; overflow: hidden;
  clip: rect(0 0 0 0); clip-path: inset(50%); white-space: nowrap; border: 0;
}
/* A ring that shows on light and dark backgrounds alike. */
:focus { outline: none; }
:focus-visible { outline: 2px solid #fff; outline-offset: 0; box-shadow: 0 0 0 4px #1a1a1a; }
textarea:focus-visible { outline: none; border-color: var(--accent-ink); box-shadow: 0 0 0 1px var(--accent-ink); }

.launcher {
  position: fixed; z-index: 2147483000;
  inset-block-end: max(20px, env(safe-area-inset-bottom));
  inset-inline-end: 20px;
  width: 60px; height: 60px; padding: 0; border: 0; border-radius: 50%;
  background: var(--accent); color: var(--on-accent); cursor: pointer;
  display: grid; place-items: center;
  box-shadow: 0 4px 16px rgba(0, 0, 0, .28);
  transition: transform .15s ease;
}
.launcher:hover { transform: scale(1.05); }
.launcher svg { width: 28px; height: 28px; }
.badge {
  position: absolute; top: -4px; inset-inline-end: -4px;
  min-width: 24px; height: 24px; padding: 0 6px; border-radius: 12px; border: 2px solid #fff;
  background: #b3261e; color: #fff; font-size: 12px; font-weight: 700; line-height: 20px; text-align: center;
}

.panel {
  position: fixed; z-index: 2147483000;
  inset-block-end: calc(max(20px, env(safe-area-inset-bottom)) + 72px);
  inset-inline-end: 20px;
  width: 380px; max-width: calc(100vw - 40px);
  height: 620px; max-height: calc(100vh - 120px);
  display: flex; flex-direction: column; overflow: hidden;
  background: #fff; border-radius: 16px;
  box-shadow: 0 12px 40px rgba(0, 0, 0, .25), 0 0 0 1px rgba(0, 0, 0, .06);
  animation: parley-pop .18s ease-out;
}
@keyframes parley-pop { from { opacity: 0; transform: translateY(12px) scale(.98); } }

.head {
  display: flex; align-items: center; gap: 10px; flex: none;
  padding: 12px 10px 12px 14px; padding-inline: 14px 10px;
  background: var(--accent); color: var(--on-accent);
}
.avatar {
  flex: none; width: 38px; height: 38px; border-radius: 50%; object-fit: cover;
  display: grid; place-items: center; font-weight: 700; font-size: 17px;
  background: rgba(255, 255, 255, .22); color: inherit;
}
.heading { flex: 1; min-width: 0; }
.title { margin: 0; font-size: 16px; font-weight: 650; line-height: 1.3; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
.status { font-size: 12px; line-height: 1.3; opacity: .92; }
.status:empty { display: none; }
.close {
  flex: none; width: 40px; height: 40px; border: 0; border-radius: 50%; padding: 0;
  background: transparent; color: inherit; cursor: pointer; display: grid; place-items: center;
}
.close:hover { background: rgba(127, 127, 127, .25); }
.close svg { width: 22px; height: 22px; }

.scroller {
  flex: 1; min-height: 0; overflow-y: auto; overscroll-behavior: contain;
  padding: 8px 12px 12px; background: #faf8f6;
}
.log { display: flex; flex-direction: column; }
.empty { color: #5c5c5c; text-align: center; margin: 28px 12px; font-size: 13px; }
.day { align-self: center; margin: 14px 0 2px; padding: 2px 10px; border-radius: 10px; background: #eee8e2; color: #4f4f4f; font-size: 12px; }

/* One row per reply. flex-start is the reading start, so RTL mirrors by itself. */
.row { display: flex; flex-direction: column; align-items: flex-start; margin-top: 10px; max-width: 100%; min-width: 0; }
.row.more { margin-top: 4px; }
.row.me { align-items: flex-end; }
.who { margin: 0 6px 2px; font-size: 12px; font-weight: 650; color: #3d4f66; }
.bubble {
  max-width: 85%; padding: 8px 12px; border-radius: 16px; border-end-start-radius: 4px;
  background: #efe8e1; color: #1f1f1f;
}
.me .bubble { background: var(--accent); color: var(--on-accent); border-end-start-radius: 16px; border-end-end-radius: 4px; }
.agent .bubble { background: #e3ecf7; }
.me.sending .bubble { opacity: .65; }
/* Line breaks kept; long words and URLs wrap instead of overflowing; CJK breaks by the
   strict kinsoku rules (no line starting with 。or ー) and never between Latin letters. */
.text { white-space: pre-wrap; overflow-wrap: anywhere; word-break: normal; line-break: strict; }
.text a { color: inherit; text-decoration: underline; text-underline-offset: 2px; }
.time { margin: 3px 6px 0; font-size: 11px; color: #5c5c5c; }
.photo { display: block; max-width: 85%; max-height: 260px; margin-top: 6px; border-radius: 12px; background: #efe8e1; }

.choices { display: flex; flex-wrap: wrap; gap: 6px; margin-top: 8px; max-width: 100%; }
.choice {
  min-height: 36px; padding: 6px 14px; border-radius: 18px; cursor: pointer; text-align: start;
  border: 1.5px solid var(--accent); background: #fff; color: var(--accent-ink); font-weight: 550;
  overflow-wrap: anywhere; line-break: strict; max-width: 100%;
}
.choice:hover:not(:disabled), .choice.chosen { background: var(--accent); color: var(--on-accent); }
.choice:disabled { cursor: default; border-color: #d3cdc7; background: #f4f1ee; color: #5c5c5c; }
.choice.chosen:disabled { border-color: var(--accent); background: var(--accent); color: var(--on-accent); opacity: .75; }

.carousel {
  display: flex; gap: 10px; width: 100%; margin-top: 8px; padding: 4px 4px 10px;
  overflow-x: auto; overscroll-behavior-x: contain; scroll-snap-type: x mandatory;
  scroll-padding-inline: 4px; scrollbar-width: thin; border-radius: 12px;
}
.card {
  flex: 0 0 150px; scroll-snap-align: start; /* narrow enough that the next card peeks in */ display: flex; flex-direction: column; overflow: hidden;
  background: #fff; border: 1px solid #e3dbd3; border-radius: 12px;
}
.card .pic { display: block; width: 100%; aspect-ratio: 4 / 3; object-fit: cover; background: #efe8e1; }
.card .ph { display: grid; place-items: center; font-size: 30px; font-weight: 700; color: var(--accent-ink); }
.card-body { flex: 1; display: flex; flex-direction: column; gap: 2px; padding: 8px 10px 10px; }
.card-title, .card-sub {
  display: -webkit-box; -webkit-box-orient: vertical; overflow: hidden; overflow-wrap: anywhere; line-break: strict;
}
.card-title { font-weight: 650; -webkit-line-clamp: 2; }
.card-price { font-weight: 650; color: var(--accent-ink); }
.card-sub { font-size: 12px; color: #555; -webkit-line-clamp: 3; }
.card-act { margin-top: auto; padding-top: 8px; }
.card-btn {
  width: 100%; min-height: 34px; padding: 6px 10px; border: 0; border-radius: 8px; cursor: pointer;
  background: var(--accent); color: var(--on-accent); font-weight: 600;
}
.card-btn:disabled { cursor: default; background: #e4dfda; color: #5c5c5c; }

.linkbtn {
  display: inline-flex; align-items: center; gap: 8px; margin-top: 8px; padding: 9px 16px; border-radius: 10px;
  background: var(--accent); color: var(--on-accent); font-weight: 650; text-decoration: none; max-width: 85%;
  overflow-wrap: anywhere;
}
.linkbtn svg { width: 16px; height: 16px; flex: none; }
.linkbtn:hover { filter: brightness(1.1); }
.linkbtn.paid { border: 0; font: inherit; font-weight: 650; cursor: default; background: #e3f1e6; color: #1d5e2f; filter: none; }
.me.waiting .bubble { outline: 1.5px dashed var(--accent-ink); outline-offset: 2px; }

.typing { display: flex; margin-top: 10px; }
.dots { display: inline-flex; gap: 4px; padding: 12px 14px; border-radius: 16px; border-end-start-radius: 4px; background: #efe8e1; }
.dots i { width: 7px; height: 7px; border-radius: 50%; background: #6f6f6f; animation: parley-blink 1.2s infinite both; }
.dots i:nth-child(2) { animation-delay: .2s; }
.dots i:nth-child(3) { animation-delay: .4s; }
@keyframes parley-blink { 0%, 80%, 100% { opacity: .35; transform: none; } 40% { opacity: 1; transform: translateY(-3px); } }

.note {
  flex: none; margin: 0 12px 8px; padding: 7px 10px; border-radius: 8px;
  background: #fff4e0; color: #5a3a00; font-size: 12.5px;
}
.note:empty { display: none; }
.composer {
  flex: none; display: flex; align-items: flex-end; gap: 8px;
  padding: 10px 12px; padding-block-end: max(10px, env(safe-area-inset-bottom));
  border-top: 1px solid #ebe4dd; background: #fff;
}
.input {
  flex: 1; min-width: 0; height: 40px; max-height: 120px; resize: none; overflow-y: auto;
  padding: 9px 14px; border: 1px solid #bfb5ab; border-radius: 20px; background: #fff; color: #1f1f1f;
  font: inherit; font-size: 14.5px; line-height: 1.4;
  overflow-wrap: anywhere; line-break: strict;
}
.input::placeholder { color: #6e6e6e; }
.send {
  flex: none; width: 40px; height: 40px; padding: 0; border: 0; border-radius: 50%; cursor: pointer;
  background: var(--accent); color: var(--on-accent); display: grid; place-items: center;
}
.send svg { width: 20px; height: 20px; }
.root[dir="rtl"] .send svg, .root[dir="rtl"] .linkbtn svg { transform: scaleX(-1); }

/* Phones: the panel takes the whole screen; its close button (and Escape) bring the bubble back. */
@media (max-width: 480px) {
  .panel {
    inset: 0; width: auto; height: auto; max-width: none; max-height: none; border-radius: 0;
    padding-top: env(safe-area-inset-top);
  }
  .root.open .launcher { display: none; }
  .input { font-size: 16px; } /* below 16px iOS zooms the page on focus */
  .launcher { inset-inline-end: 16px; inset-block-end: max(16px, env(safe-area-inset-bottom)); }
}
@media (prefers-reduced-motion: reduce) {
  *, *::before, *::after { animation: none !important; transition: none !important; scroll-behavior: auto !important; }
}
@media (forced-colors: active) {
  .launcher, .bubble, .choice, .card, .card-btn, .linkbtn, .send, .input { border: 1px solid CanvasText; }
}
`;

  /* --- the widget ------------------------------------------------------------------------------ */

  const state = {
    config: null,
    user: null,
    locale: 'en',        // the bot locale sent with each message
    fmtLocale: 'en',     // the shopper's (the page's) locale, for times and prices
    words: STRINGS.en,
    open: false,
    ready: false,
    wantOpen: null,      // open()/close() called before the config arrived
    shown: new Set(),    // transcript line ids already on screen (a reconnect replays some)
    lastId: 0,           // the newest line id received, for ?after= on a fresh connection
    lastOutId: 0,        // the newest bot line
    read: 0,             // the newest bot line the shopper has seen
    unread: 0,
    titles: new Map(),   // payload -> title of the choice or card, to show a tap on replay
    pending: [],         // shopper messages shown before the stream brought them back
    outbox: [],          // what is still to be posted, in order (the first may be waiting out a 429)
    posting: false,      // the outbox's first is being posted
    waitTimer: 0,        // the countdown while the first waits (Retry-After)
    streamReady: false,  // the stream has sent everything before it opened ("ready")
    hasLines: false,     // the conversation shows something: no greeting on open then
    openGreeted: false,  // this page load asked for the greeting on open
    paidUrls: new Set(), // payment links whose order is paid
    paidLabels: new Map(), // payment link -> its accessible "Paid €7.20"
    payLinks: [],        // [url, element] of the payment buttons on screen
    interactive: [],     // buttons of the newest bot line; older ones are retired
    interactiveLine: 0,
    chatted: false,      // the shopper wrote in this page view (no proactive greeting then)
    greeted: false,
    lastDay: '',
    source: null,
    retryMs: 2000,
    retryTimer: 0,
    reconnectTimer: 0,
    typingTimer: 0,
    noteTimer: 0,
  };

  let ui = null; // the elements, once built

  const t = (key, vars) =>
    (state.words[key] || STRINGS.en[key]).replace(/\{(\w+)\}/g, (m, k) => (vars && k in vars ? vars[k] : m));

  function title() {
    return state.config.title || state.config.bot || BOT;
  }

  // The id is made when first needed (the first message or greeting), so visitors who never
  // chat store nothing.
  function ensureUser() {
    if (!state.user) {
      state.user = randomId();
      local.set(KEY_USER, state.user);
      connect();
    }
    return state.user;
  }

  /* --- start --------------------------------------------------------------------------------- */

  window.parleyWidget = {
    bot: BOT,
    open() { state.ready ? openPanel(true) : (state.wantOpen = true); },
    close() { state.ready ? closePanel(false) : (state.wantOpen = false); },
    get user() { return ensureUser(); },
  };

  start();

  async function start() {
    const config = await loadConfig();
    if (!config) return;
    if (document.readyState === 'loading') {
      await new Promise((resolve) => document.addEventListener('DOMContentLoaded', resolve, { once: true }));
    }
    if (document.querySelector('[data-parley-bot="' + BOT + '"]')) return; // the tag is on the page twice
    state.config = config;
    setupLocale(config);
    const stored = local.get(KEY_USER);
    state.user = stored && /^[A-Za-z0-9_-]{8,128}$/.test(stored) ? stored : null;
    state.read = Number(local.get(KEY_READ)) || 0;
    build();
    state.ready = true;
    const open = state.wantOpen != null ? state.wantOpen : session.get(KEY_OPEN) === '1';
    // A panel restored after a reload does not steal the focus from the page.
    if (state.user) connect();
    if (state.user) restoreOutbox();
    if (open) openPanel(state.wantOpen === true);
    watchForGreeting(config.greet || {});
    window.addEventListener('online', reconnectSoon);
  }

  async function loadConfig() {
    for (let attempt = 0, wait = 2000; attempt < 6; attempt++, wait *= 2) {
      try {
        const res = await fetch(api('config'), { credentials: 'omit' });
        if (res.ok) return await res.json();
        console.warn('parley: the chat is not available on this page (' + res.status + ' from ' + api('config') + ')');
        if (res.status < 500) return null; // 403: this origin is not in bot.json webchat.origins
      } catch (e) { /* offline or the server restarts: try again */ }
      await new Promise((resolve) => setTimeout(resolve, wait));
    }
    return null;
  }

  function setupLocale(config) {
    const wanted = wantedLanguages();
    const pageLang = wanted[0] || 'en';
    state.locale = matchLocale(wanted, config.locales, config.default_locale);
    state.fmtLocale = pageLang; // times and prices as the shop's own page writes them
    // The widget's own words in the page's language when we have them, else the bot's, else English.
    state.words = STRINGS[primary(pageLang)] || STRINGS[primary(state.locale)] || STRINGS.en;
    state.rtl = pageIsRtl(pageLang);
    try {
      state.timeFmt = new Intl.DateTimeFormat(state.fmtLocale, { hour: '2-digit', minute: '2-digit' });
      state.dayFmt = new Intl.DateTimeFormat(state.fmtLocale, { year: 'numeric', month: 'short', day: 'numeric' });
    } catch (e) {
      state.timeFmt = new Intl.DateTimeFormat('en', { hour: '2-digit', minute: '2-digit' });
      state.dayFmt = new Intl.DateTimeFormat('en', { year: 'numeric', month: 'short', day: 'numeric' });
    }
  }

  /* --- building the widget ------------------------------------------------------------------------ */

  function build() {
    // A tag of our own: a shop's rules for div, section ... cannot match the host.
    const host = h('parley-chat', { 'data-parley-bot': BOT });
    const shadow = host.attachShadow({ mode: 'open' });
    // A constructed stylesheet still works where the shop's CSP forbids inline <style>.
    if (shadow.adoptedStyleSheets && window.CSSStyleSheet && 'replaceSync' in CSSStyleSheet.prototype) {
      const sheet = new CSSStyleSheet();
      sheet.replaceSync(CSS_TEXT);
      shadow.adoptedStyleSheets = [sheet];
    } else {
      shadow.append(h('style', { text: CSS_TEXT }));
    }
    document.body.append(host);

    const name = title();
    const root = h('div', { class: 'root', dir: state.rtl ? 'rtl' : 'ltr', lang: state.locale });
    shadow.append(root);
    const colors = palette(state.config.accent, root);
    root.style.setProperty('--accent', colors.accent);
    root.style.setProperty('--on-accent', colors.onAccent);
    root.style.setProperty('--accent-ink', colors.accentInk);

    const ids = { title: 'parley-title', unread: 'parley-unread', input: 'parley-input' };

    const avatarUrl = safeUrl(state.config.avatar);
    const initial = h('span', { class: 'avatar', 'aria-hidden': 'true', text: Array.from(name)[0] || '?' });
    let avatar = initial;
    if (avatarUrl) {
      avatar = h('img', { class: 'avatar', src: avatarUrl, alt: '' });
      avatar.addEventListener('error', () => avatar.replaceWith(initial), { once: true });
    }

    const status = h('div', { class: 'status', role: 'status' });
    const close = h('button', { type: 'button', class: 'close', 'aria-label': t('close'), title: t('close') }, icon('close'));
    const log = h('div', { class: 'log', role: 'log', 'aria-live': 'polite', 'aria-relevant': 'additions' });
    const empty = h('p', { class: 'empty', text: t('empty') });
    const typingText = h('span', { class: 'sr' });
    const typing = h('div', { class: 'typing', hidden: true, role: 'status' }, [
      h('span', { class: 'dots', 'aria-hidden': 'true' }, [h('i'), h('i'), h('i')]),
      typingText,
    ]);
    // The scroller takes the focus so that the history can be scrolled with the keyboard.
    const scroller = h('div', { class: 'scroller', role: 'region', tabindex: '0', 'aria-label': t('messages') }, [empty, log, typing]);
    const note = h('div', { class: 'note', role: 'status' });
    const input = h('textarea', {
      id: ids.input, class: 'input', rows: '1', placeholder: t('placeholder'), autocomplete: 'off',
      maxlength: String(MAX_TEXT_BYTES), enterkeyhint: 'send',
    });
    const send = h('button', { type: 'submit', class: 'send', 'aria-label': t('send'), title: t('send') }, icon('send'));
    const composer = h('form', { class: 'composer' }, [
      h('label', { class: 'sr', for: ids.input, text: t('input') }), input, send,
    ]);
    const panel = h('div', { class: 'panel', role: 'dialog', 'aria-label': t('dialog', { title: name }), hidden: true }, [
      h('div', { class: 'head' }, [
        avatar,
        h('div', { class: 'heading' }, [h('h2', { class: 'title', id: ids.title, text: name }), status]),
        close,
      ]),
      scroller, note, composer,
    ]);

    const unreadText = h('span', { class: 'sr', id: ids.unread, role: 'status' });
    const badge = h('span', { class: 'badge', 'aria-hidden': 'true', hidden: true });
    const launcherIcon = h('span', { 'aria-hidden': 'true' }, icon('chat'));
    const launcher = h('button', {
      type: 'button', class: 'launcher', 'aria-label': t('open', { title: name }), 'aria-expanded': 'false',
      'aria-describedby': ids.unread, 'aria-haspopup': 'dialog',
    }, [launcherIcon, badge]);

    // The panel comes first, so Tab from the send button reaches the bubble and then the page.
    root.append(panel, launcher, unreadText);

    ui = { host, shadow, root, panel, launcher, launcherIcon, badge, unreadText, status, log, empty, scroller,
      typing, typingText, note, input, send, composer, close };

    launcher.addEventListener('click', () => (state.open ? closePanel(true) : openPanel(true)));
    close.addEventListener('click', () => closePanel(true));
    root.addEventListener('keydown', onKeydown);
    composer.addEventListener('submit', (e) => {
      e.preventDefault();
      sendText();
    });
    input.addEventListener('keydown', (e) => {
      // Enter sends, Shift+Enter is a new line, and Enter that confirms an IME conversion
      // (Japanese, Chinese, Korean input) must not send the half-typed text.
      if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && e.keyCode !== 229) {
        e.preventDefault();
        sendText();
      }
    });
    input.addEventListener('input', autosize);
  }

  function autosize() {
    const input = ui.input;
    input.style.height = 'auto';
    input.style.height = Math.min(input.scrollHeight + 2, 120) + 'px';
  }

  /* --- open, close, keyboard ---------------------------------------------------------------------- */

  function openPanel(focus) {
    state.open = true;
    session.set(KEY_OPEN, '1');
    ui.panel.hidden = false;
    // Full-screen on a phone, the panel is modal there (and Tab cycles inside it).
    ui.panel.setAttribute('aria-modal', String(matchMedia('(max-width: 480px)').matches));
    ui.root.classList.add('open');
    ui.launcher.setAttribute('aria-expanded', 'true');
    swapIcon('down');
    markRead();
    scrollToEnd();
    if (focus) ui.input.focus({ preventScroll: true });
    greetOnOpen();
  }

  function closePanel(returnFocus) {
    const hadFocus = ui.shadow.activeElement != null;
    state.open = false;
    session.set(KEY_OPEN, '0');
    ui.panel.hidden = true;
    ui.root.classList.remove('open');
    ui.launcher.setAttribute('aria-expanded', 'false');
    swapIcon('chat');
    if (returnFocus || hadFocus) ui.launcher.focus();
  }

  function swapIcon(name) {
    ui.launcherIcon.textContent = '';
    ui.launcherIcon.append(icon(name));
  }

  function onKeydown(e) {
    // (Escape while an IME is converting cancels the conversion, not the chat.)
    if (e.key === 'Escape' && state.open && !e.isComposing) {
      e.preventDefault();
      e.stopPropagation();
      closePanel(true);
      return;
    }
    // On a phone the panel covers the page, so Tab cycles inside it instead of wandering
    // into the hidden page behind.
    if (e.key === 'Tab' && state.open && matchMedia('(max-width: 480px)').matches) {
      const all = focusables();
      if (!all.length) return;
      const first = all[0], last = all[all.length - 1], at = ui.shadow.activeElement;
      if (e.shiftKey && at === first) {
        e.preventDefault();
        last.focus();
      } else if (!e.shiftKey && at === last) {
        e.preventDefault();
        first.focus();
      }
    }
  }

  function focusables() {
    return Array.from(ui.panel.querySelectorAll('button, a[href], textarea, [tabindex="0"]'))
      .filter((el) => !el.disabled && el.getClientRects().length);
  }

  /* --- unread ------------------------------------------------------------------------------------ */

  function markRead() {
    if (state.lastOutId > state.read) {
      state.read = state.lastOutId;
      local.set(KEY_READ, state.read);
    }
    state.unread = 0;
    showUnread();
  }

  function showUnread() {
    const n = state.open ? 0 : state.unread;
    ui.badge.hidden = n === 0;
    ui.badge.textContent = n > 99 ? '99+' : String(n);
    // Said once by screen readers as it changes; also the bubble's description.
    ui.unreadText.textContent = n ? t('unread', { n }) : '';
  }

  /* --- the stream -------------------------------------------------------------------------------- */

  function connect() {
    if (!ui || !state.user || state.source) return;
    clearTimeout(state.retryTimer);
    let url = api('events') + '?user=' + encodeURIComponent(state.user);
    // A fresh EventSource after an error: ask only for what we have not seen. (A fresh page
    // load has lastId 0, so the stream replays the whole conversation and a reload shows it.)
    if (state.lastId) url += '&after=' + state.lastId;
    const source = new EventSource(url);
    state.source = source;
    source.addEventListener('line', (e) => {
      let line;
      try {
        line = JSON.parse(e.data);
      } catch (err) {
        return;
      }
      onLine(line);
    });
    // Everything before the stream opened has come: now the widget knows whether the
    // conversation is empty.
    source.addEventListener('ready', () => {
      state.streamReady = true;
      if (state.open) greetOnOpen();
    });
    source.addEventListener('open', () => {
      state.retryMs = 2000;
      setConnected(true);
    });
    source.addEventListener('error', () => {
      setConnected(false);
      // While CONNECTING the browser retries by itself (sending Last-Event-ID); CLOSED means
      // it gave up (an HTTP error, a proxy's error page), so we try again, more slowly each time.
      if (source.readyState === EventSource.CLOSED) {
        source.close();
        state.source = null;
        state.retryTimer = setTimeout(connect, state.retryMs);
        state.retryMs = Math.min(state.retryMs * 2, 60000);
      }
    });
  }

  function reconnectSoon() {
    if (!state.source && state.user) {
      state.retryMs = 2000;
      connect();
    }
  }

  // "Reconnecting…" only when the stream stays away for a moment: a page navigation or
  // a quick reconnect does not flash it.
  function setConnected(ok) {
    clearTimeout(state.reconnectTimer);
    if (ok) ui.status.textContent = '';
    else state.reconnectTimer = setTimeout(() => (ui.status.textContent = t('reconnecting')), 1500);
  }

  function onLine(line) {
    if (!line || typeof line.id !== 'number') return;
    if (line.id > state.lastId) state.lastId = line.id;
    if (state.shown.has(line.id)) return;
    state.shown.add(line.id);
    if (line.direction === 'in') {
      showIn(line);
      noticePayment(line.body && line.body.event);
    } else if (line.direction === 'out') {
      showOut(line);
    }
    // other directions (delivery statuses) are not for the shopper's eyes
  }

  /* --- showing lines ----------------------------------------------------------------------------- */

  function showIn(line) {
    const body = line.body || {};
    const text = typeof body.text === 'string' && body.text ? body.text : null;
    const payload = typeof body.payload === 'string' ? body.payload : null;
    // A page event (the greeting) is not something the shopper said, and the bot often
    // declines it mid-conversation: the choices on screen stay valid.
    if (text == null && payload == null) return;
    // Our own message, already on screen since the shopper sent it: it is now confirmed.
    const mine = state.pending.find((p) => (p.text != null ? p.text === text : p.payload === payload));
    if (mine) {
      state.hasLines = true;
      confirm(mine, line);
      return;
    }
    retire();
    // A tap is recorded as its payload; show the title it had on the button.
    const shown = text != null ? text : state.titles.get(payload) || payload;
    state.hasLines = true;
    const row = meRow(shown, line.at);
    row.dataset.line = line.id;
    insert(row, line.at);
    scrollToEnd();
  }

  function showOut(line) {
    const replies = Array.isArray(line.body) ? line.body.filter((r) => r && typeof r === 'object') : [];
    hideTyping(); // even an empty answer (the bot waits for a person) ends the waiting
    const buttons = [];
    const built = [];
    for (const reply of replies) {
      const row = botRow(reply, buttons, built.length > 0);
      if (row) built.push(row);
    }
    const rows = built.length;
    if (!rows) return; // nothing said: whatever was on screen still applies
    state.hasLines = true;
    retire();
    for (const row of built) {
      row.dataset.line = line.id;
      insert(row, line.at);
    }
    built[rows - 1].append(timeEl(line.at)); // one time for everything said in the turn
    state.interactive = buttons;
    state.interactiveLine = line.id;
    if (line.id > state.lastOutId) state.lastOutId = line.id;
    if (state.open) markRead();
    else if (line.id > state.read) {
      state.unread += rows;
      showUnread();
    }
    scrollToEnd();
  }

  // A new line means older choices no longer apply: the flow has moved on.
  function retire() {
    for (const b of state.interactive) b.disabled = true;
    state.interactive = [];
  }

  // Rows go in the order of the transcript, before any messages still on their way up.
  function insert(row, at) {
    const firstPending = state.pending.length ? state.pending[0].row : null;
    const day = dayOf(at);
    if (day && day !== state.lastDay) {
      state.lastDay = day;
      ui.log.insertBefore(h('div', { class: 'day', text: day }), firstPending);
    }
    ui.log.insertBefore(row, firstPending);
    ui.empty.hidden = true;
  }

  function meRow(text, at) {
    const bubble = h('div', { class: 'bubble' }, [
      h('span', { class: 'sr', text: t('you') + ': ' }),
      h('span', { class: 'text', dir: 'auto' }, linkified(text)),
    ]);
    return h('div', { class: 'row me' }, [bubble, timeEl(at)]);
  }

  function botRow(reply, buttons, continued) {
    const agent = reply.agent && typeof reply.agent.name === 'string' ? reply.agent.name : null;
    const who = agent || title();
    const row = h('div', { class: 'row bot' + (agent ? ' agent' : '') + (continued ? ' more' : '') });
    if (agent) row.append(h('div', { class: 'who', 'aria-hidden': 'true', text: agent }));
    let any = false;
    if (typeof reply.text === 'string' && reply.text) {
      row.append(h('div', { class: 'bubble' }, [
        h('span', { class: 'sr', text: who + ': ' }),
        h('span', { class: 'text', dir: 'auto' }, linkified(reply.text)),
      ]));
      any = true;
    }
    const img = safeUrl(reply.image);
    if (img) {
      const photo = h('img', { class: 'photo', src: img, alt: '', loading: 'lazy' });
      photo.addEventListener('load', keepAtEnd);
      photo.addEventListener('error', () => photo.remove());
      row.append(photo);
      any = true;
    }
    if (Array.isArray(reply.cards) && reply.cards.length) {
      row.append(carousel(reply.cards, buttons));
      any = true;
    }
    const link = reply.link && safeUrl(reply.link.url);
    if (link) {
      const label = String(reply.link.title || link);
      const button = state.paidUrls.has(link) ? paidButton(link) : h('a', { class: 'linkbtn', href: link, target: '_blank', rel: 'noopener' }, [
        h('span', { dir: 'auto', text: label }), icon('external'), h('span', { class: 'sr', text: ' ' + t('opensNew') }),
      ]);
      state.payLinks.push([link, button]);
      row.append(button);
      any = true;
    }
    if (Array.isArray(reply.choices) && reply.choices.length) {
      row.append(choices(reply.choices, buttons));
      any = true;
    }
    return any ? row : null;
  }

  /* --- paid orders -------------------------------------------------------------------------------- */

  // A payment's result reaches the conversation as an event line (the provider confirmed it):
  // a paid order's Pay buttons become "Paid ✓", here and wherever the link shows up again.
  function noticePayment(ev) {
    if (!ev || ev.type !== 'payment' || ev.status !== 'paid' || !ev.order) return;
    const url = safeUrl(ev.order.payment_url);
    if (!url) return;
    const amount = formatPrice({ amount: ev.order.total, currency: ev.order.currency });
    state.paidUrls.add(url);
    if (amount) state.paidLabels.set(url, t('paidLabel', { amount }));
    for (const entry of state.payLinks) {
      if (entry[0] !== url || entry[1].tagName !== 'A') continue;
      const paid = paidButton(url);
      const focused = entry[1].getRootNode().activeElement === entry[1];
      entry[1].replaceWith(paid);
      entry[1] = paid;
      if (focused) paid.focus({ preventScroll: true }); // the keyboard stays where it was
    }
  }

  // aria-disabled, not disabled: it does nothing when pressed, yet stays focusable, so the
  // focus of a shopper who was on the Pay link does not fall back to the page. Its name says
  // what was paid ("Paid €7.20").
  function paidButton(url) {
    return h('button', { type: 'button', class: 'linkbtn paid', 'aria-disabled': 'true', 'aria-label': state.paidLabels.get(url) || t('paid') }, [
      h('span', { text: t('paid') }), h('span', { 'aria-hidden': 'true', text: '✓' }),
    ]);
  }

  function choices(list, buttons) {
    const box = h('div', { class: 'choices' });
    for (const c of list) {
      if (!c || typeof c.title !== 'string') continue;
      const payload = typeof c.payload === 'string' ? c.payload : c.title;
      state.titles.set(payload, c.title);
      const b = h('button', { type: 'button', class: 'choice', dir: 'auto', text: c.title });
      b.addEventListener('click', () => tap(b, payload, c.title));
      buttons.push(b);
      box.append(b);
    }
    return box;
  }

  function carousel(cards, buttons) {
    // Focusable so that arrow keys scroll it; a scroll container in an RTL panel scrolls RTL.
    const strip = h('div', { class: 'carousel', role: 'group', 'aria-label': t('products'), tabindex: '0' });
    for (const card of cards) {
      if (!card || typeof card !== 'object') continue;
      const name = String(card.title || card.sku || '');
      const item = h('div', { class: 'card', role: 'group', 'aria-label': name });
      const src = safeUrl(card.image);
      const placeholder = h('div', { class: 'pic ph', 'aria-hidden': 'true', text: Array.from(name)[0] || '' });
      if (src) {
        const pic = h('img', { class: 'pic', src, alt: '', loading: 'lazy' });
        pic.addEventListener('error', () => pic.replaceWith(placeholder), { once: true });
        item.append(pic);
      } else {
        item.append(placeholder);
      }
      const body = h('div', { class: 'card-body' }, [h('div', { class: 'card-title', dir: 'auto', text: name })]);
      const price = formatPrice(card.price);
      if (price) body.append(h('div', { class: 'card-price', dir: 'auto', text: price }));
      if (typeof card.subtitle === 'string' && card.subtitle) {
        body.append(h('div', { class: 'card-sub', dir: 'auto', text: card.subtitle }));
      }
      if (typeof card.payload === 'string' && card.payload) {
        const payload = card.payload;
        if (!state.titles.has(payload)) state.titles.set(payload, name);
        const b = h('button', { type: 'button', class: 'card-btn', text: t('choose'), 'aria-label': t('choose') + ': ' + name });
        b.addEventListener('click', () => tap(b, payload, name));
        buttons.push(b);
        body.append(h('div', { class: 'card-act' }, b));
      }
      item.append(body);
      strip.append(item);
    }
    return strip;
  }

  // Money is an integer in minor units; the currency says how many digits are minor
  // (EUR 2, JPY 0, KWD 3) and Intl knows which.
  function formatPrice(price) {
    if (!price || typeof price.amount !== 'number' || typeof price.currency !== 'string') return null;
    try {
      const nf = new Intl.NumberFormat(state.fmtLocale, { style: 'currency', currency: price.currency });
      const digits = nf.resolvedOptions().maximumFractionDigits;
      return nf.format(price.amount / Math.pow(10, digits));
    } catch (e) {
      return price.amount + ' ' + price.currency;
    }
  }

  function timeEl(at) {
    const d = new Date(typeof at === 'number' ? at : Date.now());
    return h('time', { class: 'time', dir: 'auto', datetime: d.toISOString(), text: state.timeFmt.format(d) });
  }

  function dayOf(at) {
    return typeof at === 'number' ? state.dayFmt.format(new Date(at)) : '';
  }

  function scrollToEnd() {
    if (!state.open) return;
    ui.scroller.scrollTop = ui.scroller.scrollHeight;
  }

  // An image that loads later makes the list taller: stay at the end if we were there.
  function keepAtEnd() {
    const s = ui.scroller;
    if (s.scrollHeight - s.scrollTop - s.clientHeight < 320) scrollToEnd();
  }

  /* --- the typing indicator ---------------------------------------------------------------------- */

  function showTyping() {
    ui.typingText.textContent = t('typing', { title: title() });
    ui.typing.hidden = false;
    clearTimeout(state.typingTimer);
    state.typingTimer = setTimeout(hideTyping, TYPING_MS);
    scrollToEnd();
  }

  function hideTyping() {
    clearTimeout(state.typingTimer);
    ui.typing.hidden = true;
    ui.typingText.textContent = '';
  }

  /* --- notes (slow down, could not send) ------------------------------------------------------------ */

  function showNote(text, seconds) {
    ui.note.textContent = text;
    clearTimeout(state.noteTimer);
    state.noteTimer = setTimeout(() => (ui.note.textContent = ''), Math.max(seconds || 0, 6) * 1000);
  }

  /* --- sending ----------------------------------------------------------------------------------- */

  function sendText() {
    const text = ui.input.value.trim();
    if (!text) return;
    if (new TextEncoder().encode(text).length > MAX_TEXT_BYTES) {
      showNote(t('tooLong'));
      return;
    }
    ui.input.value = '';
    autosize();
    send({ text }, text, null, null); // (refused: the words go back into the box)
  }

  function tap(button, payload, shownTitle) {
    const buttons = state.interactive, line = state.interactiveLine;
    retire();
    button.classList.add('chosen');
    ui.input.focus({ preventScroll: true }); // the pressed button is now disabled: keep the focus in the panel
    // the title goes with the payload, as WhatsApp and Messenger send it: the transcript reads well
    send({ payload, text: shownTitle }, shownTitle, payload, () => {
      button.classList.remove('chosen');
      // Nothing newer came: the choices are still the current ones.
      if (state.interactiveLine === line) {
        for (const b of buttons) b.disabled = false;
        state.interactive = buttons;
      }
    });
  }

  // Shows the shopper's message at once (dimmed until the server has it) and queues it. undo
  // gives the shopper back what they did if the server refuses it for good.
  function send(fields, shown, payload, undo) {
    // the message's own id: parley records it once however often it is posted (a page left
    // while it was being posted sends it again from the next one)
    queueMine({ fields: Object.assign({ id: randomId() }, fields), shown, payload, since: 0 }, undo);
    saveOutbox();
    pump();
  }

  function queueMine(item, undo) {
    state.chatted = true;
    const { fields } = item;
    const pending = Object.assign(item, { text: fields.text != null ? fields.text : null, undo, row: meRow(item.shown, Date.now()) });
    pending.row.classList.add('sending');
    if (state.waitTimer) pending.row.classList.add('waiting'); // behind one that waits
    ui.log.append(pending.row);
    ui.empty.hidden = true;
    state.pending.push(pending);
    state.outbox.push(pending);
    scrollToEnd();
  }

  // The shopper's messages not yet accepted live in sessionStorage too, so that one waiting
  // out a 429 (or in flight) when the shopper goes to another page is sent from there.
  function saveOutbox() {
    const mine = state.outbox.filter((item) => item.row)
      .map((item) => ({ fields: item.fields, shown: item.shown, payload: item.payload, since: item.since }));
    if (mine.length) session.set(KEY_OUTBOX, JSON.stringify(mine));
    else session.remove(KEY_OUTBOX);
  }

  function restoreOutbox() {
    let saved = [];
    try {
      saved = JSON.parse(session.get(KEY_OUTBOX) || '[]');
    } catch (e) { /* not ours: start afresh */ }
    if (!Array.isArray(saved)) saved = [];
    for (const item of saved) {
      const ok = item && item.fields && typeof item.fields.id === 'string' && typeof item.shown === 'string';
      if (ok) queueMine({ fields: item.fields, shown: item.shown, payload: item.payload ?? null, since: Number(item.since) || 0 }, null);
    }
    saveOutbox();
    pump();
  }

  // Messages go up one at a time, in the order they were written. When parley says "not yet"
  // (429, or 503 with Retry-After) the first waits as long as it asks, saying so, and then goes
  // again; the ones behind it wait their turn.
  async function pump() {
    if (state.posting || state.waitTimer || !state.outbox.length) return;
    const item = state.outbox[0];
    state.posting = true;
    showTyping();
    const res = await post(item.fields);
    state.posting = false;
    if (res.wait && !item.since) item.since = Date.now();
    const waitedTooLong = res.wait && Date.now() + res.wait * 1000 - item.since > MAX_WAIT_MS;
    if (res.ok) {
      state.outbox.shift();
      if (item.row) sent(item, res);
      saveOutbox();
    } else if (res.wait && !waitedTooLong) {
      hideTyping();
      saveOutbox(); // (since when it waits)
      waitToSend(res.wait);
      return;
    } else if (!item.row) {
      // the greeting on open, refused or kept waiting too long: only it is dropped, the
      // shopper's messages behind it go on
      state.outbox.shift();
      hideTyping();
      console.warn('parley: the greeting on open was not accepted (' + res.status + ')');
    } else {
      refused();
    }
    pump();
  }

  function sent(pending, res) {
    pending.row.classList.remove('sending', 'waiting');
    // The contract's 202 carries the line's id: then the stream's copy is known already.
    if (res.data && typeof res.data.id === 'number') {
      state.shown.add(res.data.id);
      drop(pending);
    }
  }

  // The countdown: "Sending in 2 s…" on screen (and said once to screen readers), the waiting
  // messages marked, then the outbox goes on.
  function waitToSend(seconds) {
    let left = Math.max(1, Math.ceil(seconds));
    const rows = state.outbox.filter((item) => item.row).map((item) => item.row);
    for (const row of rows) row.classList.add('waiting');
    const shown = h('span', { 'aria-hidden': 'true', text: t('sendingIn', { n: left }) });
    if (rows.length) { // (only the greeting on open waits: nothing of the shopper's to speak of)
      clearTimeout(state.noteTimer);
      ui.note.textContent = '';
      ui.note.append(shown, h('span', { class: 'sr', text: t('waiting', { n: left }) }));
    }
    const tick = () => {
      left--;
      if (left > 0) {
        shown.textContent = t('sendingIn', { n: left });
        state.waitTimer = setTimeout(tick, 1000);
        return;
      }
      state.waitTimer = 0;
      if (shown.isConnected) ui.note.textContent = '';
      pump();
    };
    state.waitTimer = setTimeout(tick, 1000);
  }

  // Refused for good (or no answer at all): everything still queued comes back to the shopper
  // — typed words into the box, in the order written, taps as buttons that work again.
  function refused() {
    const queued = state.outbox.splice(0);
    const texts = [];
    for (const item of queued) {
      if (!item.row) continue;
      drop(item);
      item.row.remove();
      if (item.fields.payload == null && item.text != null) texts.push(item.text);
      else if (item.undo) item.undo();
    }
    hideTyping();
    saveOutbox();
    if (texts.length) {
      ui.input.value = texts.concat(ui.input.value ? [ui.input.value] : []).join('\n');
      autosize();
    }
    showNote(t('failed'));
  }

  // Something the widget says without a message of the shopper's (the greeting on open):
  // queued with the messages, so it keeps its place among them.
  function sendQuietly(fields) {
    state.outbox.push({ fields, row: null });
    pump();
  }

  function confirm(pending, line) {
    pending.row.classList.remove('sending');
    pending.row.dataset.line = line.id;
    const time = pending.row.querySelector('time');
    if (time) time.replaceWith(timeEl(line.at));
    drop(pending);
    // It sits in its place already; only a new day needs its heading before it.
    const day = dayOf(line.at);
    if (day && day !== state.lastDay) {
      state.lastDay = day;
      ui.log.insertBefore(h('div', { class: 'day', text: day }), pending.row);
    }
  }

  function drop(pending) {
    const i = state.pending.indexOf(pending);
    if (i >= 0) state.pending.splice(i, 1);
  }

  async function post(fields) {
    const body = Object.assign({ user: ensureUser(), locale: state.locale }, fields);
    body.page = { url: location.href.slice(0, 2048), title: document.title.slice(0, 300) }; // for the agents
    try {
      const res = await fetch(api('messages'), {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify(body),
        credentials: 'omit',
      });
      let data = null;
      try {
        data = await res.json();
      } catch (e) { /* an empty or non-JSON body */ }
      // Retry-After is only readable cross-origin if the server exposes it; the error text
      // ("wait N s") is the fallback. Only "not yet" answers are waited out.
      let wait = Number(res.headers.get('Retry-After'));
      if (!wait && data && typeof data.error === 'string') wait = Number((data.error.match(/(\d+)\s*s\b/) || [])[1]);
      if (res.status === 429) wait = wait || 5;
      else if (res.status !== 503) wait = 0;
      return { ok: res.ok, status: res.status, data, wait: wait > 0 ? Math.min(wait, 300) : 0 };
    } catch (e) {
      return { ok: false, status: 0, data: null };
    }
  }

  /* --- proactive greeting ---------------------------------------------------------------------------- */

  // greet.pages: a page whose path starts with one of these, a whole segment at a time
  // ("/checkout" is /checkout and /checkout/payment, not /checkouts); a trailing "*" is
  // a plain prefix ("/sale*" is /sale and /sale-2026).
  function pageMatches(pages) {
    const here = location.pathname;
    return (Array.isArray(pages) ? pages : []).some((p) => {
      if (typeof p !== 'string' || !p) return false;
      if (p.endsWith('*')) return here.startsWith(p.slice(0, -1));
      const base = p.length > 1 ? p.replace(/\/+$/, '') : p;
      return here === base || here.startsWith(base.endsWith('/') ? base : base + '/');
    });
  }

  function watchForGreeting(greet) {
    if (pageMatches(greet.pages)) {
      greetNow('page');
      return;
    }
    const after = Number(greet.after_seconds);
    if (!(after > 0)) return;
    // Time on the page counts only while the page is visible: a tab left in the background
    // does not greet the shopper into an empty room.
    let seen = 0;
    const timer = setInterval(() => {
      if (state.chatted || state.greeted) return clearInterval(timer);
      if (document.visibilityState === 'visible') seen++;
      if (seen >= after) {
        clearInterval(timer);
        greetNow('time');
      }
    }, 1000);
  }

  // The bot's start when the panel opens (webchat.greet_on_open): only for a conversation
  // that shows nothing yet — for a known shopper, once the stream has replayed what there is.
  // parley runs the start once per conversation whatever the widget asks.
  function greetOnOpen() {
    const greet = state.config.greet || {};
    if (!greet.on_open || state.openGreeted || state.chatted || state.hasLines) return;
    if (state.user && !state.streamReady) return; // asked again on "ready"
    state.openGreeted = true;
    state.greeted = true; // no page greeting on top of it
    sendQuietly({ event: { type: 'open' } });
  }

  // Once per page load, and never once the shopper has written in this page view.
  function greetNow(trigger) {
    if (state.greeted || state.chatted) return;
    state.greeted = true;
    post({
      event: { type: 'page', url: location.href.slice(0, 2048), title: document.title.slice(0, 300), trigger },
    }).then((res) => {
      if (!res.ok) console.warn('parley: the greeting was not accepted (' + res.status + ')');
    });
  }
})();
