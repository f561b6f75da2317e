// 동행랩 learner toolbar: 제출하기 / 원래대로 되돌리기 / 도움 요청 on notebooks of a released module.
// Talks to the learner server extension (donghaeng/server/extension.py) at <base>/donghaeng/api/.
import { Widget } from '@lumino/widgets';

const MODULE_PATH = /^[^/]+\/[^/]+\/[^/]+\.ipynb$/;
const MSG = {
  offline: '인터넷 연결이 끊겼어요. 작업은 이 화면과 저장한 파일에 그대로 있어요. 연결되면 다시 눌러 주세요.',
  login: '로그인이 끝났어요. 새 탭에서 다시 로그인한 뒤, 이 화면으로 돌아와 다시 눌러 주세요. 지금 작업은 그대로 있어요.',
  saveFailed: '저장하지 못했어요. 인터넷 연결이나 로그인을 확인한 뒤 다시 눌러 주세요. 지금 작업은 이 화면에 그대로 있어요.',
  unknown: '문제가 생겼어요. 잠시 뒤 다시 해 주세요. 계속되면 도움 요청을 눌러 주세요.'
};

class LoginExpired extends Error {}

function xsrfToken() {
  const match = document.cookie.match(/(?:^|;\s*)_xsrf=([^;]*)/);
  return match ? decodeURIComponent(match[1]) : '';
}

async function call(settings, method, path, body) {
  const headers = { 'X-XSRFToken': xsrfToken(), 'Content-Type': 'application/json' };
  if (settings.token) headers.Authorization = `token ${settings.token}`;
  const response = await fetch(`${settings.baseUrl}donghaeng/api/${path}`, {
    method, headers, credentials: 'same-origin', body: body ? JSON.stringify(body) : undefined
  });
  const type = response.headers.get('Content-Type') || '';
  if (response.redirected || response.status === 401 || response.status === 403 || !type.includes('json')) {
    throw new LoginExpired(MSG.login);
  }
  const data = await response.json();
  if (!response.ok) throw new Error(data.message || MSG.unknown);
  return data;
}

function explain(error) {
  if (error instanceof LoginExpired) return MSG.login;
  if (error instanceof TypeError) return MSG.offline; // fetch() could not reach the server
  return error.message || MSG.unknown;
}

function element(tag, props = {}, children = []) {
  const node = document.createElement(tag);
  Object.assign(node, props);
  for (const child of children) node.append(child);
  return node;
}

let dialogCount = 0;

/** A modal <dialog>: resolves true for the OK button, false for cancel / Escape. */
function ask(title, lines, ok, cancel) {
  return new Promise(resolve => {
    const id = `dh-dialog-${++dialogCount}`;
    const dialog = element('dialog', { className: 'dh-dialog' });
    dialog.setAttribute('aria-labelledby', `${id}-title`);
    const okButton = element('button', { type: 'button', className: 'dh-button dh-primary', textContent: ok });
    const buttons = [okButton];
    let cancelButton = null;
    if (cancel) {
      cancelButton = element('button', { type: 'button', className: 'dh-button', textContent: cancel });
      buttons.unshift(cancelButton);
    }
    dialog.append(element('h2', { id: `${id}-title`, textContent: title }),
      ...lines.map(line => (line instanceof Node ? line : element('p', { textContent: line }))),
      element('div', { className: 'dh-dialog-buttons' }, buttons));
    const close = answer => { dialog.close(); dialog.remove(); resolve(answer); };
    okButton.addEventListener('click', () => close(true));
    if (cancelButton) cancelButton.addEventListener('click', () => close(false));
    dialog.addEventListener('cancel', event => { event.preventDefault(); close(false); });
    document.body.append(dialog);
    dialog.showModal();
    (cancelButton || okButton).focus();
  });
}

function loginLink() {
  const link = element('a', { href: `${document.baseURI.split('/user/')[0]}/hub/login`, target: '_blank',
    textContent: '새 탭에서 다시 로그인하기' });
  return element('p', {}, [link]);
}

class LearnerBar extends Widget {
  constructor(panel, context, settings) {
    super({ node: element('div', { className: 'dh-bar' }) });
    this.panel = panel;
    this.context = context;
    this.settings = settings;
    this.busy = false;
    this.pendingSubmit = null; // request id reused after a failure, so a retry never submits twice
    this.status = element('span', { className: 'dh-status' });
    this.status.setAttribute('role', 'status');
    this.status.setAttribute('aria-live', 'polite');
    this.submitButton = this.button('제출하기', 'dh-primary dh-submit', () => this.submit());
    this.restoreButton = this.button('원래대로 되돌리기', 'dh-restore', () => this.restore());
    this.helpButton = this.button('도움 요청', 'dh-help', () => this.help());
    this.node.append(this.submitButton, this.restoreButton, this.helpButton, this.status);
  }

  button(label, className, action) {
    const node = element('button', { type: 'button', className: `dh-button ${className}`, textContent: label });
    node.addEventListener('click', () => this.guard(action));
    return node;
  }

  async guard(action) {
    if (this.busy) return; // a double click runs the action once
    this.busy = true;
    for (const b of [this.submitButton, this.restoreButton, this.helpButton]) b.disabled = true;
    try {
      await action();
    } catch (error) {
      this.say(explain(error));
      await ask('알림', [explain(error), ...(error instanceof LoginExpired ? [loginLink()] : [])], '확인');
    } finally {
      this.busy = false;
      for (const b of [this.submitButton, this.restoreButton, this.helpButton]) b.disabled = false;
    }
  }

  say(text) { this.status.textContent = text; }

  async save() {
    try {
      await this.context.save();
    } catch (error) {
      throw new Error(MSG.saveFailed);
    }
  }

  async submit() {
    this.say('저장하고 있어요…');
    await this.save();
    const info = await call(this.settings, 'GET', `notebook?path=${encodeURIComponent(this.context.path)}`);
    if (info.problems.length) {
      this.say('제출할 수 없어요. 안내를 읽어 주세요.');
      if (await ask('이대로는 제출할 수 없어요', info.problems, '원래대로 되돌리기', '닫기')) await this.restore(true);
      return;
    }
    if (info.late) {
      throw new Error(`마감(${info.deadline_text})이 지나서 제출할 수 없어요. 작업은 그대로 저장되어 있어요. '도움 요청'으로 강사님께 알려 주세요.`);
    }
    const lines = ['저장한 내용 그대로 강사님께 보내요.'];
    if (info.deadline_text) lines.push(`마감: ${info.deadline_text}. 마감 전에는 몇 번이든 다시 제출할 수 있어요.`);
    if (info.last_submission) lines.push(`전에 제출한 때: ${info.last_submission}. 다시 제출하면 이번 것이 채점돼요.`);
    if (info.failing_checks.length) {
      const warning = element('p', { className: 'dh-warning',
        textContent: `확인 칸 ${info.failing_checks.length}개가 아직 통과하지 못했어요 (${info.failing_checks.map(n => `${n}번째 칸`).join(', ')}). 그래도 제출할 수 있지만, 고친 뒤 제출하면 더 좋아요.` });
      lines.push(warning);
    }
    this.say('');
    if (!(await ask('제출할까요?', lines, '제출하기', '취소'))) return;
    this.pendingSubmit = this.pendingSubmit || (crypto.randomUUID ? crypto.randomUUID() : String(Date.now() + Math.random()));
    this.say('제출하고 있어요…');
    const receipt = await call(this.settings, 'POST', 'submit', { path: this.context.path, request_id: this.pendingSubmit });
    this.pendingSubmit = null;
    this.say(`제출했어요 (${receipt.receipt})`);
    await ask('제출했어요', [`접수 시각: ${receipt.receipt}`, '채점이 끝나면 학습 홈에서 점수와 피드백을 볼 수 있어요.'], '확인');
  }

  async restore(confirmed = false) {
    if (!confirmed && !(await ask('처음 받은 노트북으로 되돌릴까요?', [
      '지금 노트북은 지우지 않고 \'이전 작업\' 폴더에 따로 보관해요.', '되돌린 뒤에는 처음부터 다시 할 수 있어요.'],
      '되돌리기', '취소'))) return;
    if (this.context.model.dirty) await this.save();
    const result = await call(this.settings, 'POST', 'restore', { path: this.context.path });
    await this.context.revert();
    this.say('처음 받은 노트북으로 되돌렸어요.');
    await ask('되돌렸어요', [result.backup ? `전에 하던 노트북은 '${result.backup}'에 있어요.` : '처음 받은 노트북을 다시 받았어요.'], '확인');
  }

  async help() {
    const id = `dh-help-${++dialogCount}`;
    const text = element('textarea', { id, rows: 3, className: 'dh-textarea' });
    const label = element('label', { htmlFor: id, textContent: '어떤 점이 어려운지 적어 주세요 (안 적어도 돼요)' });
    const cell = this.panel.content.activeCellIndex + 1;
    if (!(await ask('도움 요청', [`지금 보고 있는 칸(${cell}번째 칸)을 강사님께 알려요.`, label, text], '보내기', '취소'))) return;
    const saved = await call(this.settings, 'POST', 'help', { path: this.context.path, cell, message: text.value });
    this.say(saved.message);
  }
}

const plugin = {
  id: 'donghaeng-learner:toolbar',
  description: '동행랩: 제출하기, 원래대로 되돌리기, 도움 요청',
  autoStart: true,
  activate: app => {
    const settings = app.serviceManager.serverSettings;
    app.docRegistry.addWidgetExtension('Notebook', {
      createNew: (panel, context) => {
        if (!MODULE_PATH.test(context.path)) return;
        context.ready.then(() => call(settings, 'GET', `notebook?path=${encodeURIComponent(context.path)}`))
          .then(() => {
            if (!panel.isDisposed) panel.toolbar.insertItem(0, 'donghaeng-learner', new LearnerBar(panel, context, settings));
          })
          .catch(() => undefined); // not a module notebook, or no learner extension here: no bar
      }
    });
  }
};

export default plugin;
