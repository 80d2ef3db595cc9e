// Lightbox in JupyterLab: the Studies panel, launcher cards for the role's lessons, and
// the app view (a viewer notebook with its code hidden, run as soon as it opens).
import { ILabShell } from '@jupyterlab/application';
import { ICommandPalette } from '@jupyterlab/apputils';
import { ILauncher } from '@jupyterlab/launcher';
import { INotebookTracker, NotebookActions } from '@jupyterlab/notebook';
import { workspaceConfig } from './api';
import { StudiesPanel } from './studies';

const APP_VIEW_CLASS = 'lbx-app-view';
const COMMANDS = {
  openLesson: 'lightbox:open-lesson',
  appView: 'lightbox:app-view',
  showStudies: 'lightbox:show-studies'
};

function openPath(app, path) {
  return app.commands.execute('docmanager:open', { path, factory: 'Notebook' });
}

const studies = {
  id: '@lightbox/lab:studies',
  description: 'A side panel that searches every archive of the role and opens studies.',
  autoStart: true,
  activate: async app => {
    const config = await workspaceConfig();
    if (!config.panels.includes('studies')) {
      return;
    }
    const panel = new StudiesPanel(path => openPath(app, path));
    app.shell.add(panel, 'left', { rank: 150 });
    app.commands.addCommand(COMMANDS.showStudies, {
      label: 'Show the Studies panel',
      execute: () => app.shell.activateById(panel.id)
    });
  }
};

const launcher = {
  id: '@lightbox/lab:launcher',
  description: "Launcher cards for the lessons of the user's role.",
  autoStart: true,
  requires: [ILauncher],
  activate: async (app, launcherModel) => {
    app.commands.addCommand(COMMANDS.openLesson, {
      label: args => args.label || args.path,
      caption: args => `Open the lesson ${args.path}`,
      execute: args => openPath(app, args.path)
    });
    const config = await workspaceConfig();
    if (!config.panels.includes('launcher')) {
      return;
    }
    config.lessons.forEach((lesson, rank) => {
      launcherModel.add({
        command: COMMANDS.openLesson,
        args: { path: lesson.path, label: lesson.title },
        category: config.role_title ? `Lightbox: ${config.role_title}` : 'Lightbox',
        rank
      });
    });
  }
};

/** Run a notebook top to bottom once its kernel is ready (once per opened panel). */
async function runWhenReady(panel) {
  if (panel.node.dataset.lightboxRun) {
    return;
  }
  panel.node.dataset.lightboxRun = 'starting';
  await panel.context.ready;
  await panel.sessionContext.ready;
  const session = panel.sessionContext;
  if (!session.session || !session.session.kernel) {
    panel.node.dataset.lightboxRun = 'no-kernel';
    return;
  }
  await NotebookActions.runAll(panel.content, session);
  panel.node.dataset.lightboxRun = 'ran';
}

/** Hide the code of a notebook (markdown and outputs stay) and run it. */
async function showAsApp(panel, labShell, simple) {
  panel.addClass(APP_VIEW_CLASS);
  if (simple && labShell) {
    labShell.mode = 'single-document';
  }
  await runWhenReady(panel);
}

function isAppNotebook(panel) {
  const metadata = panel.content.model && panel.content.model.getMetadata('lightbox');
  return Boolean(metadata && metadata.app_view);
}

const appView = {
  id: '@lightbox/lab:app-view',
  description: 'The viewer without code cells: notebooks opened as an app and run.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ILabShell, ICommandPalette],
  activate: async (app, tracker, labShell, palette) => {
    app.commands.addCommand(COMMANDS.appView, {
      label: 'Show as app (hide code, run all)',
      isEnabled: () => tracker.currentWidget !== null,
      execute: () => {
        if (tracker.currentWidget) {
          return showAsApp(tracker.currentWidget, labShell, true);
        }
      }
    });
    app.contextMenu.addItem({ command: COMMANDS.appView, selector: '.jp-Notebook', rank: 90 });
    if (palette) {
      palette.addItem({ command: COMMANDS.appView, category: 'Lightbox' });
    }
    const config = await workspaceConfig();
    if (!config.panels.includes('app-view')) {
      return;
    }
    // Viewer notebooks marked as apps open without code; other notebooks in the
    // launch folder (the hub's EHR launches) are run, so nobody has to Run All.
    const consider = async panel => {
      await panel.context.ready;
      if (isAppNotebook(panel)) {
        await showAsApp(panel, labShell, config.simple_interface);
      } else if (config.autorun_paths.some(prefix => panel.context.path.startsWith(prefix))) {
        await runWhenReady(panel);
      }
    };
    tracker.forEach(panel => void consider(panel));
    tracker.widgetAdded.connect((_, panel) => void consider(panel));
  }
};

export default [studies, launcher, appView];
