// The theme, applied before the page is first painted: a classic script in
// <head>, run before the stylesheet loads and long before the app's
// modules, so a dark choice never flashes white. It reads the choice of
// the user who last signed in here; themes.js is where it is chosen.
(() => {
  try {
    const user = localStorage.getItem('confab.user');
    const choice = user ? localStorage.getItem(`confab.theme|${user}`) : null;
    if (choice === 'light' || choice === 'dark') document.documentElement.dataset.theme = choice;
  } catch {
    /* no storage: follow the system */
  }
})();
