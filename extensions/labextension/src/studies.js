// The "Studies" side panel: federated search, archive health, thumbnails, one-click open.
import { Widget } from '@lumino/widgets';
import { getJSON, postJSON, thumbnailURL } from './api';

const STATE_TEXT = { ok: 'ok', slow: 'slow', down: 'down' };

function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/** DICOM DA "20150206" as "2015-02-06" (other text as it came). */
export function formatDate(value) {
  const match = /^(\d{4})(\d{2})(\d{2})$/.exec(value || '');
  return match ? `${match[1]}-${match[2]}-${match[3]}` : value || '';
}

/** DICOM TM "101530.123" as "10:15:30", "1015" as "10:15" (other text as it came). */
export function formatTime(value) {
  const match = /^(\d{2})(\d{2})?(\d{2})?/.exec(value || '');
  if (!match) {
    return value || '';
  }
  return [match[1], match[2] || '00', match[3]].filter(Boolean).join(':');
}

/** What tells two studies of one description apart: accession, series, images. */
export function studyDetails(study) {
  const parts = [];
  if (study.accession_number) {
    parts.push(`Accession ${study.accession_number}`);
  }
  const series = study.number_of_series;
  if (typeof series === 'number') {
    parts.push(`${series} series`);
  }
  const images = study.number_of_instances;
  if (typeof images === 'number') {
    parts.push(`${images} ${images === 1 ? 'image' : 'images'}`);
  }
  return parts.join(' · ');
}

export class StudiesPanel extends Widget {
  constructor(openPath) {
    super();
    this.openPath = openPath;
    this.id = 'lightbox-studies';
    this.title.label = 'Studies';
    this.title.caption = 'Search every archive of your role and open a study';
    this.addClass('lbx-studies');
    this.objectURLs = [];
    this.build();
  }

  build() {
    const form = element('form', 'lbx-studies-form');
    // Patient names and IDs typed here must not stay in the browser's form history.
    form.autocomplete = 'off';
    this.fields = {};
    for (const [name, label] of [
      ['patient_name', "Patient's name"],
      ['patient_id', 'Patient ID'],
      ['modality', 'Modality (several: CT,MR)'],
      ['study_date', 'Study date (YYYYMMDD or range)'],
      ['accession_number', 'Accession number']
    ]) {
      const row = element('label', 'lbx-studies-field');
      row.appendChild(element('span', '', label));
      const input = element('input');
      input.name = name;
      input.type = 'text';
      input.autocomplete = 'off';
      row.appendChild(input);
      this.fields[name] = input;
      form.appendChild(row);
    }
    const search = element('button', 'jp-mod-styled jp-mod-accept lbx-studies-search', 'Search');
    search.type = 'submit';
    form.appendChild(search);
    form.addEventListener('submit', event => {
      event.preventDefault();
      void this.search();
    });
    this.node.appendChild(form);

    const healthHeader = element('div', 'lbx-studies-heading', 'Archives');
    const refresh = element('button', 'jp-mod-styled lbx-studies-refresh', 'Check');
    refresh.addEventListener('click', () => void this.refreshHealth());
    healthHeader.appendChild(refresh);
    this.node.appendChild(healthHeader);
    this.healthNode = element('ul', 'lbx-studies-health');
    this.node.appendChild(this.healthNode);
    this.messageNode = element('div', 'lbx-studies-message');
    this.node.appendChild(this.messageNode);
    this.resultsNode = element('ul', 'lbx-studies-results');
    this.node.appendChild(this.resultsNode);
  }

  onAfterAttach() {
    void this.refreshHealth();
  }

  showMessage(text, kind = 'info') {
    this.messageNode.textContent = text;
    this.messageNode.dataset.kind = kind;
  }

  showHealth(archives) {
    this.healthNode.textContent = '';
    for (const archive of archives) {
      const item = element('li', 'lbx-archive');
      item.dataset.archive = archive.name;
      item.dataset.state = archive.state;
      item.appendChild(element('span', 'lbx-archive-name', archive.name));
      const latency = archive.latency_ms === null ? '' : ` ${Math.round(archive.latency_ms)} ms`;
      item.appendChild(
        element('span', 'lbx-archive-state', (STATE_TEXT[archive.state] || archive.state) + latency)
      );
      if (archive.message) {
        item.appendChild(element('div', 'lbx-archive-detail', archive.message));
      }
      this.healthNode.appendChild(item);
    }
  }

  async refreshHealth() {
    try {
      const health = await getJSON('api/health');
      this.showHealth(health.archives);
      if (health.message) {
        this.showMessage(health.message, 'error');
      } else {
        // The server words the notice on down or slow archives.
        this.showMessage(health.notice || '', health.notice ? 'warning' : 'info');
      }
    } catch (err) {
      this.showMessage(`Cannot check the archives: ${err.message}`, 'error');
    }
  }

  async search() {
    const query = {};
    for (const [name, input] of Object.entries(this.fields)) {
      if (input.value.trim()) {
        query[name] = input.value.trim();
      }
    }
    this.showMessage('Searching every archive...');
    this.node.dataset.searching = 'true';
    for (const objectURL of this.objectURLs) {
      URL.revokeObjectURL(objectURL);
    }
    this.objectURLs = [];
    this.resultsNode.textContent = '';
    try {
      const results = await getJSON('api/search', query);
      this.showHealth(results.archives);
      const warning = results.notice || '';
      const count = `${results.studies.length} ${results.studies.length === 1 ? 'study' : 'studies'}`;
      this.showMessage(warning ? `${count}. ${warning}` : count, warning ? 'warning' : 'info');
      for (const study of results.studies) {
        this.resultsNode.appendChild(this.studyItem(study));
      }
    } catch (err) {
      // The server's message (e.g. every archive down) says what to do: shown as is.
      if (err.data && Array.isArray(err.data.archives)) {
        this.showHealth(err.data.archives);
      }
      this.showMessage(err.fromServer ? err.message : `The search failed: ${err.message}`, 'error');
    } finally {
      this.node.dataset.searching = 'false';
    }
  }

  studyItem(study) {
    const item = element('li', 'lbx-study');
    item.dataset.studyInstanceUid = study.study_instance_uid;
    const picture = element('img', 'lbx-study-thumbnail');
    picture.alt = '';
    item.appendChild(picture);
    void thumbnailURL(study.study_instance_uid).then(objectURL => {
      if (objectURL) {
        this.objectURLs.push(objectURL);
        picture.src = objectURL;
        picture.dataset.loaded = 'true';
      }
    });
    const text = element('div', 'lbx-study-text');
    text.appendChild(element('div', 'lbx-study-patient', `${study.patient_name} (${study.patient_id})`));
    const when = [formatDate(study.study_date), formatTime(study.study_time)].filter(Boolean).join(' ');
    const description = [when, study.modalities.join('/'), study.study_description];
    text.appendChild(element('div', 'lbx-study-description', description.filter(Boolean).join(' ')));
    // Two studies may read alike above; these tell them apart.
    text.appendChild(element('div', 'lbx-study-details', studyDetails(study)));
    text.appendChild(element('div', 'lbx-study-locations', `in ${study.locations.join(', ')}`));
    item.appendChild(text);
    const open = element('button', 'jp-mod-styled jp-mod-accept lbx-study-open', 'Open');
    open.title = 'Open the study in the viewer';
    open.addEventListener('click', () => void this.open(study.study_instance_uid));
    item.appendChild(open);
    return item;
  }

  async open(studyInstanceUID) {
    try {
      const opened = await postJSON('api/open', { study_instance_uid: studyInstanceUID });
      await this.openPath(opened.path);
    } catch (err) {
      this.showMessage(`Cannot open the study: ${err.message}`, 'error');
    }
  }
}
