// Calls to the Lightbox server extension (lightbox_extensions.server), same origin.
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

const settings = ServerConnection.makeSettings();

function url(path, query) {
  const base = URLExt.join(settings.baseUrl, 'lightbox', path);
  const search = query ? URLExt.objectToQueryString(query) : '';
  return base + search;
}

async function request(path, { query, method = 'GET', body } = {}) {
  const init = { method, cache: 'no-store' };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers = { 'Content-Type': 'application/json' };
  }
  const response = await ServerConnection.makeRequest(url(path, query), init, settings);
  return response;
}

/** An Error from a failed call: the server's own message, and its JSON as `data`. */
function failure(path, response, data) {
  const error = new Error(data.message || `${path}: HTTP ${response.status}`);
  error.data = data;
  error.fromServer = Boolean(data.message);
  return error;
}

/** GET a JSON endpoint; a failed call throws an Error whose text the user can read. */
export async function getJSON(path, query) {
  const response = await request(path, { query });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw failure(path, response, data);
  }
  return data;
}

export async function postJSON(path, body) {
  const response = await request(path, { method: 'POST', body });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw failure(path, response, data);
  }
  return data;
}

/** A thumbnail as an object URL, or null when the archive has none for the study. */
export async function thumbnailURL(studyInstanceUID) {
  const response = await request('api/thumbnail', {
    query: { study_instance_uid: studyInstanceUID }
  });
  if (!response.ok) {
    return null;
  }
  return URL.createObjectURL(await response.blob());
}

let configPromise = null;

/** The workspace settings the hub chose for this user (role, panels, lessons). */
export function workspaceConfig() {
  if (configPromise === null) {
    configPromise = getJSON('api/config').catch(err => {
      console.warn('Lightbox: no workspace settings from the server', err);
      return { role: null, panels: [], lessons: [], autorun_paths: [] };
    });
  }
  return configPromise;
}
