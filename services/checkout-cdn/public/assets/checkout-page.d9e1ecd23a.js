/* Hosted checkout: /checkout?order_id=[&key=&embedded=true&origin=&test_outcome=&test_delay_ms=],
   /success and /failure?payment_id=. A card that needs 3-D Secure shows the mock bank's page. */
(() => {
  'use strict';

  const POLL_INTERVAL_MS = 2000;
  const POLL_GIVE_UP_MS = 5 * 60 * 1000;
  const VPA_PATTERN = /^[a-zA-Z0-9._-]+@[a-zA-Z0-9]+$/;
  const FIELD_ERROR_CODES = {INVALID_VPA: 'vpa', INVALID_CARD: 'number', EXPIRED_CARD: 'expiry'};

  const config = window.GATEWAY_CONFIG || {};
  const API_BASE = (config.apiBase || `${location.protocol}//${location.hostname}:8000/api/v1`).replace(/\/+$/, '');
  const params = new URLSearchParams(location.search);
  const pageMatch = /^\/(success|failure)(?:\.html)?\/?$/.exec(location.pathname);
  const page = pageMatch ? pageMatch[1] : 'checkout';
  const embedded = params.get('embedded') === 'true';
  const parentOrigin = embedded ? parseOrigin(params.get('origin')) : null;

  const state = {
    orderId: (params.get('order_id') || '').trim(),
    key: (params.get('key') || '').trim(),
    // Test mode only (the gateway refuses them otherwise): sent as X-Test-Outcome / X-Test-Delay-Ms.
    testControls: testControlHeaders(params),
    order: null,
    method: null,
    attempt: 0, // bumps on every new attempt so a stale poll loop stops
    pending: null, // {fingerprint, key} of a payment request that got no answer
    bank: null, // {payment, attempt, busy} while the mock bank's page waits for the shopper
    answered: new Set(), // payments whose authentication this page answered (never shown the bank page again)
    cardLast4: {}, // by payment id, for the bank's page (the public payment status carries no card details)
  };

  function testControlHeaders(query) {
    const headers = {};
    const outcome = query.get('test_outcome');
    const delay = query.get('test_delay_ms');
    if (outcome !== null) headers['X-Test-Outcome'] = outcome;
    if (delay !== null) headers['X-Test-Delay-Ms'] = delay;
    return headers;
  }

  const $ = (testId, root = document) => root.querySelector(`[data-test-id="${testId}"]`);
  const el = {
    container: $('checkout-container'),
    merchant: document.getElementById('merchant-name'),
    amount: $('order-amount'),
    orderId: $('order-id'),
    notice: document.getElementById('notice'),
    noticeTitle: document.getElementById('notice-title'),
    noticeText: document.getElementById('notice-text'),
    payPanel: document.getElementById('pay-panel'),
    methods: $('payment-methods'),
    formSlot: document.getElementById('form-slot'),
    processing: $('processing-state'),
    success: $('success-state'),
    paymentId: $('payment-id'),
    paidAmount: document.getElementById('paid-amount'),
    done: document.getElementById('done-button'),
    error: $('error-state'),
    errorDetail: document.getElementById('error-detail'),
    errorRef: document.getElementById('error-ref'),
    errorPaymentId: document.getElementById('error-payment-id'),
    retry: $('retry-button'),
    otpPage: $('otp-page'),
    otpForm: document.getElementById('otp-form'),
    otpInput: $('otp-input'),
    otpSubmit: $('otp-submit'),
    otpCancel: $('otp-cancel'),
    otpMerchant: document.getElementById('otp-merchant'),
    otpAmount: document.getElementById('otp-amount'),
    otpCardLabel: document.getElementById('otp-card-label'),
    otpCard: document.getElementById('otp-card'),
  };

  // ---------------------------------------------------------------- parent window

  const parentLink = {ready: false, queue: []};

  function parseOrigin(value) {
    if (!value) return null;
    try {
      const url = new URL(value);
      return url.protocol === 'http:' || url.protocol === 'https:' ? url.origin : null;
    } catch {
      return null;
    }
  }

  /** Tell the embedding page something; only ever to its exact origin, once it said hello. */
  function notifyParent(message) {
    if (!embedded || !parentOrigin || window.parent === window) return;
    if (!parentLink.ready) {
      parentLink.queue.push(message);
      return;
    }
    window.parent.postMessage(message, parentOrigin);
  }

  window.addEventListener('message', (event) => {
    if (!embedded || event.source !== window.parent || event.origin !== parentOrigin) return;
    const message = event.data;
    if (message && typeof message === 'object' && message.type === 'checkout_init') {
      parentLink.ready = true;
      for (const queued of parentLink.queue.splice(0)) window.parent.postMessage(queued, parentOrigin);
    }
  });

  if (embedded) {
    document.documentElement.classList.add('embedded');
    document.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') notifyParent({type: 'close_modal'});
    });
    el.done.addEventListener('click', () => notifyParent({type: 'close_modal'}));
  }

  // ---------------------------------------------------------------- API

  class ApiError extends Error {
    constructor(status, code, description) {
      super(description || 'Request failed');
      this.status = status;
      this.code = code;
    }
  }

  async function api(method, path, body, headers = {}) {
    let response;
    try {
      response = await fetch(`${API_BASE}${path}`, {
        method,
        headers: body ? {'Content-Type': 'application/json', ...headers} : headers,
        body: body ? JSON.stringify(body) : undefined,
        mode: 'cors',
        credentials: 'omit',
        cache: 'no-store',
      });
    } catch {
      throw new ApiError(0, 'NETWORK_ERROR', 'We could not reach the payment server. Check your connection and try again.');
    }
    let payload = null;
    try {
      payload = await response.json();
    } catch {
      payload = null;
    }
    if (!response.ok) {
      const error = (payload && payload.error) || {};
      throw new ApiError(response.status, error.code || 'SERVER_ERROR', error.description || `The payment server answered ${response.status}`);
    }
    return payload;
  }

  const getOrder = (orderId) => api('GET', `/orders/${encodeURIComponent(orderId)}/public`);
  const getPayment = (paymentId) => api('GET', `/payments/${encodeURIComponent(paymentId)}/public`);

  function newIdempotencyKey() {
    if (window.crypto && typeof window.crypto.randomUUID === 'function') return `chk_${window.crypto.randomUUID()}`;
    return `chk_${Date.now().toString(36)}${Math.random().toString(36).slice(2)}`;
  }

  /** Return a short non-cryptographic digest (cyrb53) of a string, for equality checks only. */
  function digest(text) {
    let h1 = 0xdeadbeef;
    let h2 = 0x41c6ce57;
    for (let i = 0; i < text.length; i += 1) {
      const code = text.charCodeAt(i);
      h1 = Math.imul(h1 ^ code, 2654435761);
      h2 = Math.imul(h2 ^ code, 1597334677);
    }
    h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
    h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
    return (4294967296 * (2097151 & h2) + (h1 >>> 0)).toString(36);
  }

  /** Reuse the key of an unanswered identical request (a network error), so a resend cannot pay twice. */
  function idempotencyKeyFor(body) {
    const fingerprint = digest(JSON.stringify(body)); // a digest, so card data is not kept around
    if (!state.pending || state.pending.fingerprint !== fingerprint) {
      state.pending = {fingerprint, key: newIdempotencyKey()};
    }
    return state.pending.key;
  }

  // ---------------------------------------------------------------- formatting

  function formatAmount(minor, currency) {
    const code = (currency || 'INR').toUpperCase();
    let format;
    try {
      format = new Intl.NumberFormat('en-IN', {style: 'currency', currency: code});
    } catch {
      return `${code} ${(minor / 100).toFixed(2)}`;
    }
    const digits = format.resolvedOptions().maximumFractionDigits;
    return format.format(minor / 10 ** digits);
  }

  function cardNetwork(digits) {
    if (/^4/.test(digits)) return 'Visa';
    if (/^5[1-5]/.test(digits)) return 'Mastercard';
    if (/^3[47]/.test(digits)) return 'Amex';
    if (/^(60|65|8[1-9])/.test(digits)) return 'RuPay';
    return '';
  }

  // ---------------------------------------------------------------- validation (pure)

  function luhnValid(digits) {
    let sum = 0;
    for (let i = 0; i < digits.length; i += 1) {
      let digit = Number(digits[digits.length - 1 - i]);
      if (i % 2 === 1) {
        digit *= 2;
        if (digit > 9) digit -= 9;
      }
      sum += digit;
    }
    return sum % 10 === 0;
  }

  function validateVpa(value) {
    if (!value) return 'Enter your UPI ID';
    if (!VPA_PATTERN.test(value)) return 'Enter a valid UPI ID, like yourname@bank';
    return null;
  }

  function validateCardNumber(digits) {
    if (!digits) return 'Enter your card number';
    if (!/^\d{13,19}$/.test(digits)) return 'Card number must be 13 to 19 digits';
    if (!luhnValid(digits)) return 'This card number is not valid';
    return null;
  }

  /** Parse MM/YY (or MM/YYYY) into {month, year} strings, or return an error message. */
  function parseExpiry(value, now = new Date()) {
    const match = /^(\d{1,2})\s*\/\s*(\d{2}|\d{4})$/.exec(value);
    if (!value) return {error: 'Enter the expiry date'};
    if (!match) return {error: 'Enter the expiry date as MM/YY'};
    const month = Number(match[1]);
    const year = match[2].length === 2 ? 2000 + Number(match[2]) : Number(match[2]);
    if (month < 1 || month > 12) return {error: 'Expiry month must be between 01 and 12'};
    const current = now.getFullYear() * 12 + now.getMonth();
    if (year * 12 + (month - 1) < current) return {error: 'This card has expired'};
    if (year > now.getFullYear() + 50) return {error: 'Check the expiry year'};
    return {month: String(month).padStart(2, '0'), year: String(year)};
  }

  function validateCvv(value, digits) {
    if (!value) return 'Enter the CVV';
    const length = /^3[47]/.test(digits) ? '4' : '3 or 4';
    if (!/^\d{3,4}$/.test(value)) return `CVV must be ${length} digits`;
    return null;
  }

  // ---------------------------------------------------------------- view

  function show(section) {
    for (const candidate of [el.notice, el.payPanel, el.otpPage, el.processing, el.success, el.error]) {
      candidate.hidden = candidate !== section;
    }
    el.container.setAttribute('aria-busy', section === el.processing ? 'true' : 'false');
  }

  function showNotice(title, text) {
    el.noticeTitle.textContent = title;
    el.noticeText.textContent = text;
    show(el.notice);
  }

  function renderSummary({merchantName, amount, currency, orderId}) {
    const verb = page === 'checkout' ? 'Paying' : 'Payment to';
    el.merchant.textContent = merchantName ? `${verb} ${merchantName}` : 'Order payment';
    el.amount.textContent = amount == null ? '—' : formatAmount(amount, currency);
    el.orderId.textContent = orderId || '—';
    document.title = merchantName ? `Pay ${merchantName} · PayGate` : 'Secure checkout · PayGate';
  }

  function payLabel() {
    return state.order ? `Pay ${formatAmount(state.order.amount, state.order.currency)}` : 'Pay';
  }

  function selectMethod(method) {
    state.method = method;
    for (const button of el.methods.querySelectorAll('[data-method]')) {
      button.setAttribute('aria-pressed', String(button.dataset.method === method));
    }
    const template = document.getElementById(`${method}-form-template`);
    const form = template.content.firstElementChild.cloneNode(true);
    $('pay-button', form).textContent = payLabel();
    el.formSlot.replaceChildren(form);
    if (method === 'card') wireCardInputs(form);
    form.addEventListener('input', (event) => clearFieldError(event.target));
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      submit(form);
    });
    const first = form.querySelector('input');
    if (first) first.focus();
  }

  function wireCardInputs(form) {
    const number = form.elements.number;
    const badge = form.querySelector('#card-network');
    number.addEventListener('input', () => {
      const digits = number.value.replace(/\D/g, '').slice(0, 19);
      const grouped = digits.replace(/(\d{4})(?=\d)/g, '$1 ');
      if (grouped !== number.value) number.value = grouped;
      badge.textContent = cardNetwork(digits);
    });
    const expiry = form.elements.expiry;
    expiry.addEventListener('input', (event) => {
      if (event.inputType && event.inputType.startsWith('delete')) return;
      const oneDigitMonth = /^(\d)\s*\/\s*(\d*)$/.exec(expiry.value);
      const digits = (oneDigitMonth ? `0${oneDigitMonth[1]}${oneDigitMonth[2]}` : expiry.value.replace(/\D/g, '')).slice(0, 6);
      if (digits.length > 2) {
        const formatted = `${digits.slice(0, 2)}/${digits.slice(2)}`;
        if (formatted !== expiry.value) expiry.value = formatted;
      }
    });
    const cvv = form.elements.cvv;
    cvv.addEventListener('input', () => {
      const digits = cvv.value.replace(/\D/g, '').slice(0, 4);
      if (digits !== cvv.value) cvv.value = digits;
    });
  }

  function clearFieldError(input) {
    const field = input && input.closest('.field');
    if (!field) return;
    input.removeAttribute('aria-invalid');
    const error = field.querySelector('.field-error');
    if (error) error.remove();
  }

  function clearFieldErrors(form) {
    for (const input of form.querySelectorAll('input')) clearFieldError(input);
  }

  /** Show one message under one field (the first invalid one), like the browser would. */
  function showFieldError(form, name, message) {
    clearFieldErrors(form);
    const input = form.elements[name];
    const field = input.closest('.field');
    const error = document.createElement('p');
    error.className = 'field-error';
    error.id = `${input.id}-error`;
    error.setAttribute('data-test-id', 'validation-error');
    error.setAttribute('role', 'alert');
    error.textContent = message;
    field.appendChild(error);
    input.setAttribute('aria-invalid', 'true');
    input.setAttribute('aria-errormessage', error.id);
    input.focus();
  }

  /** Check the form; return the request details or null after showing the first problem. */
  function collect(form) {
    if (state.method === 'upi') {
      const vpa = form.elements.vpa.value.trim();
      const problem = validateVpa(vpa);
      if (problem) return showFieldError(form, 'vpa', problem), null;
      return {method: 'upi', vpa};
    }
    const digits = form.elements.number.value.replace(/[\s-]/g, '');
    const expiry = parseExpiry(form.elements.expiry.value.trim());
    const cvv = form.elements.cvv.value.trim();
    const holderName = form.elements.holder_name.value.trim().replace(/\s+/g, ' ');
    const problems = [
      ['number', validateCardNumber(digits)],
      ['expiry', expiry.error || null],
      ['cvv', validateCvv(cvv, digits)],
      ['holder_name', holderName ? (holderName.length > 100 ? 'Name is too long' : null) : 'Enter the name on the card'],
    ];
    const first = problems.find(([, problem]) => problem);
    if (first) return showFieldError(form, first[0], first[1]), null;
    return {
      method: 'card',
      card: {number: digits, expiry_month: expiry.month, expiry_year: expiry.year, cvv, holder_name: holderName},
    };
  }

  // ---------------------------------------------------------------- payment flow

  async function submit(form) {
    const details = collect(form);
    if (!details) return;
    const attempt = ++state.attempt;
    const button = $('pay-button', form);
    button.disabled = true;
    show(el.processing);
    // Without a key in the link the gateway decides by the order alone (or says why not).
    const body = {...(state.key ? {key: state.key} : {}), order_id: state.orderId, ...details};
    let payment;
    try {
      payment = await api('POST', '/payments/public', body, {
        ...state.testControls,
        'Idempotency-Key': idempotencyKeyFor(body),
      });
      state.pending = null;
    } catch (error) {
      // Only a request that may not have arrived is sent again under the same key.
      if (error.status !== 0) state.pending = null;
      if (attempt !== state.attempt) return;
      button.disabled = false;
      const field = FIELD_ERROR_CODES[error.code];
      if (field && form.elements[field] && form.isConnected) {
        show(el.payPanel);
        showFieldError(form, field, error.message);
        return;
      }
      showFailure({errorCode: error.code, errorDescription: error.message, paymentId: null});
      return;
    }
    if (payment.card_last4) state.cardLast4[payment.id] = payment.card_last4;
    // The card number and CVV are not needed any more; do not keep them in the page.
    if (form.elements.number) form.elements.number.value = '';
    if (form.elements.cvv) form.elements.cvv.value = '';
    if (attempt !== state.attempt) return;
    await followPayment(payment, attempt);
  }

  async function followPayment(payment, attempt) {
    const deadline = Date.now() + POLL_GIVE_UP_MS;
    let current = payment;
    show(el.processing);
    while (attempt === state.attempt) {
      if (awaitsShopper(current)) return showBankPage(current, attempt);
      if (current.status === 'success') return showSuccess(current);
      if (current.status === 'failed') {
        return showFailure({paymentId: current.id, errorCode: current.error_code, errorDescription: current.error_description});
      }
      if (Date.now() > deadline) {
        return showNotice('Still processing', `Your bank has not confirmed payment ${current.id} yet. You will not be charged twice; check back in a few minutes.`);
      }
      await new Promise((resolve) => setTimeout(resolve, POLL_INTERVAL_MS));
      if (attempt !== state.attempt) return undefined;
      try {
        current = await getPayment(current.id);
      } catch (error) {
        // A lost poll is not a lost payment: keep asking until the deadline.
        if (error.status === 404) {
          return showNotice('Payment not found', 'We could not find this payment.');
        }
      }
    }
    return undefined;
  }

  // ---------------------------------------------------------------- the mock bank's page (3-D Secure)

  /** A payment the shopper must still authenticate (and that this page has not answered yet). */
  function awaitsShopper(payment) {
    const auth = payment.authentication;
    return payment.status === 'pending' && !!auth && auth.status === 'pending' && !state.answered.has(payment.id);
  }

  function showBankPage(payment, attempt) {
    state.bank = {payment, attempt, busy: false};
    el.otpMerchant.textContent = (state.order && state.order.merchant_name) || 'This merchant';
    el.otpAmount.textContent = formatAmount(payment.amount, payment.currency);
    const last4 = payment.card_last4 || state.cardLast4[payment.id];
    el.otpCard.textContent = last4 ? `•••• ${last4}` : '';
    el.otpCard.hidden = el.otpCardLabel.hidden = !last4;
    el.otpInput.value = '';
    clearFieldErrors(el.otpForm);
    setBankBusy(false);
    show(el.otpPage);
    el.otpInput.focus();
  }

  function setBankBusy(busy) {
    el.otpSubmit.disabled = busy;
    el.otpCancel.disabled = busy;
    el.otpInput.readOnly = busy;
  }

  /** Send the shopper's answer once (buttons off while it is on its way); the gateway decides the payment. */
  async function answerBank(answer) {
    const bank = state.bank;
    if (!bank || bank.busy) return undefined;
    bank.busy = true;
    setBankBusy(true);
    const body = {...(state.key ? {key: state.key} : {}), ...answer};
    let decided;
    try {
      decided = await api('POST', `/payments/${encodeURIComponent(bank.payment.id)}/authenticate`, body, {
        'Idempotency-Key': idempotencyKeyFor(body),
      });
      state.pending = null;
    } catch (error) {
      if (error.status === 0) {
        // It may not have arrived: the same answer goes again under the same key.
        bank.busy = false;
        setBankBusy(false);
        showFieldError(el.otpForm, 'otp', error.message);
        return undefined;
      }
      state.pending = null;
      // Answered already (another tab), or too late: the payment itself says what became of it.
      state.answered.add(bank.payment.id);
      state.bank = null;
      if (error.status === 400) return followPayment(bank.payment, bank.attempt);
      return showFailure({paymentId: bank.payment.id, errorCode: error.code, errorDescription: error.message});
    }
    state.answered.add(bank.payment.id);
    state.bank = null;
    el.otpInput.value = '';
    return followPayment(decided, bank.attempt);
  }

  el.otpForm.addEventListener('input', (event) => clearFieldError(event.target));
  el.otpForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const otp = el.otpInput.value.trim();
    if (!otp) {
      showFieldError(el.otpForm, 'otp', 'Enter the OTP your bank sent you');
      return;
    }
    answerBank({otp});
  });
  el.otpCancel.addEventListener('click', () => answerBank({cancel: true}));

  function showSuccess(payment) {
    el.paymentId.textContent = payment.id;
    el.paidAmount.textContent = payment.amount != null ? formatAmount(payment.amount, payment.currency) : el.amount.textContent;
    el.done.hidden = !embedded;
    show(el.success);
    el.done.hidden || el.done.focus();
    notifyParent({
      type: 'payment_success',
      data: {paymentId: payment.id, orderId: payment.order_id || state.orderId, status: 'success'},
    });
  }

  function showFailure({paymentId, errorCode, errorDescription}) {
    el.errorDetail.textContent = errorDescription || 'The payment was declined. No money was taken.';
    el.errorRef.hidden = !paymentId;
    el.errorPaymentId.textContent = paymentId || '';
    el.retry.hidden = page === 'checkout' && !state.order;
    show(el.error);
    el.retry.focus();
    notifyParent({type: 'payment_failed', data: {paymentId: paymentId || null, errorCode: errorCode || null, errorDescription: errorDescription || null}});
  }

  function retry() {
    state.attempt += 1;
    if (page !== 'checkout') {
      // A result page starts over on the checkout page of the same order.
      const url = new URL('/checkout', location.origin);
      url.searchParams.set('order_id', state.orderId);
      if (state.key) url.searchParams.set('key', state.key);
      location.assign(url.toString());
      return;
    }
    show(el.payPanel);
    if (state.method) selectMethod(state.method);
    else el.methods.querySelector('[data-method]').focus();
  }

  // ---------------------------------------------------------------- start

  async function startCheckout() {
    renderSummary({orderId: state.orderId});
    if (!state.orderId) {
      el.merchant.textContent = 'Checkout';
      return showNotice('This payment link is incomplete', 'It does not name an order. Please go back to the store and start the payment again.');
    }
    let order;
    try {
      order = await getOrder(state.orderId);
    } catch (error) {
      el.merchant.textContent = 'Checkout';
      if (error.status === 404 || error.status === 400) {
        return showNotice('Order not found', `We could not find order ${state.orderId}. Please go back to the store and try again.`);
      }
      return showNotice('Checkout is unavailable', `${error.message} Please try again in a moment.`);
    }
    state.order = order;
    renderSummary({merchantName: order.merchant_name, amount: order.amount, currency: order.currency, orderId: order.id});
    if (order.status === 'paid') {
      return showNotice('This order is already paid', 'A payment for this order has already succeeded; nothing more is due.');
    }
    show(el.payPanel);
    return undefined;
  }

  async function startResult() {
    const paymentId = (params.get('payment_id') || '').trim();
    renderSummary({orderId: state.orderId});
    if (!paymentId) {
      el.merchant.textContent = 'Payment status';
      return showNotice('No payment given', 'This page needs a payment_id to show a payment.');
    }
    let payment;
    try {
      payment = await getPayment(paymentId);
    } catch (error) {
      el.merchant.textContent = 'Payment status';
      if (error.status === 404 || error.status === 400) {
        return showNotice('Payment not found', `We could not find payment ${paymentId}.`);
      }
      return showNotice('Payment status is unavailable', `${error.message} Please try again in a moment.`);
    }
    state.orderId = payment.order_id || state.orderId;
    renderSummary({amount: payment.amount, currency: payment.currency, orderId: state.orderId});
    getOrder(state.orderId).then(
      (order) => {
        state.order = order;
        renderSummary({merchantName: order.merchant_name, amount: payment.amount, currency: payment.currency, orderId: order.id});
      },
      () => {},
    );
    return followPayment(payment, ++state.attempt);
  }

  el.methods.addEventListener('click', (event) => {
    const button = event.target.closest('[data-method]');
    if (button && button.dataset.method !== state.method) selectMethod(button.dataset.method);
    else if (button) el.formSlot.querySelector('input')?.focus();
  });
  el.retry.addEventListener('click', retry);

  (page === 'checkout' ? startCheckout() : startResult()).finally(() => {
    if (el.processing.hidden) el.container.setAttribute('aria-busy', 'false');
  });
})();
